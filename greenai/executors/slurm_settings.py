"""The Slurm executor's own settings (``GREENAI_SLURM_*``), apart from greenai's: only a
daemon with ``--executor slurm`` reads them. Like greenai's settings, they take an
environment mapping (``SlurmSettings.from_env``), so tests pass a dict."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from greenai.executors.env_settings import prefixed_settings

PREFIX = "GREENAI_SLURM_"


class SlurmSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    partition: str | None = Field(None, description="sbatch --partition (default: Slurm's)")
    account: str | None = Field(None, description="sbatch --account")
    sbatch_args: str = Field("", description="more sbatch arguments, shell-quoted")
    bin_dir: Path | None = Field(None, description="folder of sbatch, squeue, ... (default: PATH)")
    timeout_seconds: float = Field(30.0, gt=0, description="longest wait for one Slurm command")
    ahead_hours: float = Field(
        24.0,
        ge=0,
        description="the daemon hands a planned job to Slurm this long before its planned "
        "start, held there with --begin (0: at its start)",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlurmSettings:
        """From ``env`` alone (default: the process environment); ``ConfigError`` naming a bad
        variable."""
        return prefixed_settings(cls, PREFIX, os.environ if env is None else env, "slurm executor")

    @property
    def extra_args(self) -> list[str]:
        return shlex.split(self.sbatch_args)

    def binary(self, name: str) -> str:
        return str(self.bin_dir / name) if self.bin_dir is not None else name
