"""The real single-node Slurm that scripts/ensure-slurm.sh starts, for the Slurm executor's
tests: a check that it is up (a test fails, never skips, without it) and a contract kit."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from greenai.executors.base import Executor, Handle, Launch
from greenai.executors.slurm import SlurmExecutor
from greenai.executors.slurm_argv import job_name
from greenai.executors.slurm_settings import SlurmSettings
from tests.executors.helpers import gated, sleeping

MISSING = "/no/such/binary"
ENV_ALLOW = frozenset({"PATH", "HOME", "LANG"})


def require_slurm() -> None:
    """Fails (with what to do) unless a Slurm controller answers and a node can run jobs."""
    assert shutil.which("sinfo"), "Slurm is not installed: run scripts/ensure-slurm.sh (as root)"
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run(
            ["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, check=False
        )
        states = done.stdout.split()
        if done.returncode == 0 and any(s.rstrip("*") in ("idle", "mix", "alloc") for s in states):
            return
        assert time.monotonic() < deadline, (
            f"no Slurm node can run jobs (sinfo: {done.stdout.strip() or done.stderr.strip()}); "
            "run scripts/ensure-slurm.sh"
        )
        time.sleep(0.5)


def slurm_executor() -> SlurmExecutor:
    return SlurmExecutor(SlurmSettings.from_env({}), env_allow=ENV_ALLOW)


class SlurmKit:
    """Launches as Slurm batch jobs on this machine's node; ``cleanup`` cancels them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.launches: list[Launch] = []

    def new(self) -> Executor:
        return slurm_executor()

    def gated(self, job_id: str, code: int) -> Launch:
        return self.launch(job_id, gated(self._gate(job_id), code))

    def release(self, handle: Handle) -> None:
        self._gate(handle.job_id).touch()

    def sleeping(self, job_id: str) -> Launch:
        return self.launch(job_id, sleeping())

    def missing(self, job_id: str) -> Launch:
        return self.launch(job_id, (MISSING, "--flag"))

    def launch(self, job_id: str, command: tuple[str, ...], **options: object) -> Launch:
        launch = Launch(job_id, 1, command, 0, (), self.root / "runs" / job_id / "1", **options)  # type: ignore[arg-type]
        self.launches.append(launch)
        return launch

    def cleanup(self) -> None:
        for launch in self.launches:
            subprocess.run(["scancel", f"--name={job_name(launch)}"], check=False)

    def _gate(self, job_id: str) -> Path:
        return self.root / f"{job_id}.gate"
