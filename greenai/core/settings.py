"""All of greenai's settings in one pydantic-settings class.

Precedence, highest first: explicit values (CLI flags), ``GREENAI_*`` environment variables,
``greenai.toml`` (or the file named by ``GREENAI_CONFIG``), then the defaults below.
``load_settings`` takes the environment as a mapping, so tests pass a dict instead of touching
``os.environ``. Secrets are ``SecretStr``: they print as ``**********`` and are read only from
the environment or from files named by ``*_FILE`` variables, never from greenai.toml.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import signal
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from greenai.core.budgets import MAX_PERIOD
from greenai.core.domain import Signal
from greenai.core.errors import ConfigError
from greenai.core.time import parse_duration

SECRET_FIELDS = ("watttime_password", "api_token", "electricitymaps_token")
# Environment variables that hold secrets (or name files that do): read by greenai, never
# handed on to the jobs it runs.
SECRET_ENV_NAMES = frozenset(
    {
        "GREENAI_API_TOKEN",
        "GREENAI_API_TOKEN_FILE",
        "ELECTRICITYMAPS_TOKEN",
        "ELECTRICITYMAPS_TOKEN_FILE",
        "GREENAI_ELECTRICITYMAPS_TOKEN",
        "GREENAI_ENV_KEY_FILE",
        "GREENAI_WATTTIME_PASSWORD",
        "GREENAI_WATTTIME_USERNAME",
        "WATTTIME_PASSWORD",
        "WATTTIME_PASSWORD_FILE",
        "WATTTIME_USERNAME",
        "WATTTIME_USERNAME_FILE",
    }
)


class BudgetSpec(BaseModel):
    """A budget as people write it: ``{"kg": 50, "period": "7d"}`` (period: a duration text
    or seconds, > 0 and at most 366 days)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kg: float = Field(gt=0, allow_inf_nan=False, description="kgCO2e allowed per period")
    period: timedelta = Field(description="how often the budget rolls over: '7d', '24h', seconds")

    @field_validator("period", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        if isinstance(value, bool) or not isinstance(value, int | float | str | timedelta):
            raise ValueError("give a duration such as 7d, 24h, or seconds")
        if isinstance(value, str):
            value = parse_duration(value.strip())
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError("must be a positive duration")
        if seconds > MAX_PERIOD.total_seconds():
            raise ValueError("must be at most a year (366 days)")
        return timedelta(seconds=seconds)


_LOCATION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")


class LocationSpec(BaseModel):
    """One location: ``{"source": "electricitymaps:GB,egrid:US", "gpus": 64,
    "residency": ["eu"], "egress_usd_per_gb": 0.08, "bandwidth_gbps": {"PJM": 100}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1, description="intensity source: any provider chain spec")
    gpus: int = Field(1, ge=1, description="GPUs a job may use there at most")
    residency: tuple[str, ...] = Field((), description="data-residency tags it satisfies")
    egress_usd_per_gb: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="price of moving one GB out of it"
    )
    bandwidth_gbps: dict[str, float] = Field(
        default_factory=dict, description="link bandwidth to other locations, Gbit/s"
    )

    @field_validator("bandwidth_gbps")
    @classmethod
    def _positive_links(cls, links: dict[str, float]) -> dict[str, float]:
        for name, gbps in links.items():
            if not gbps > 0 or gbps == float("inf"):
                raise ValueError(f"link to {name!r} must be a positive finite Gbit/s")
        return links


def check_locations(locations: Mapping[str, LocationSpec]) -> Mapping[str, LocationSpec]:
    """Names are short identifiers and every link names a configured location."""
    for name, spec in locations.items():
        if not _LOCATION_NAME.match(name):
            raise ValueError(f"location name {name!r}: use letters, digits, '-' or '_'")
        unknown = sorted(set(spec.bandwidth_gbps) - set(locations))
        if unknown:
            raise ValueError(f"location {name!r}: bandwidth_gbps names unknown {unknown[0]!r}")
    return locations


class Settings(BaseSettings):
    """Every knob of greenai; each CLI flag of the same name overrides it."""

    model_config = SettingsConfigDict(env_prefix="GREENAI_", extra="ignore", frozen=True)

    home: Path = Field(Path("artifacts"), description="state folder: caches, database, evidence")
    provider: str = Field("uk", description="fallback chain, e.g. 'uk:13,egrid:RFCE'")
    policy: str | None = Field(
        None,
        description="a registered policy (`greenai policies`); run: threshold; serve: fleet "
        "with GPU slots, else window",
    )
    threshold: float | None = Field(None, ge=0, description="gCO2/kWh at or below which to run")
    defer_seconds: float = Field(3600.0, ge=0, description="longest deferral before running")
    check_interval: float = Field(300.0, gt=0, description="seconds between re-checks")
    require_signal: bool = Field(False, description="exit 3 instead of running blind")
    horizon_hours: float = Field(48.0, gt=0, le=168, description="forecast horizon to ask for")
    duration: str | None = Field(None, description="expected run time (window policy), e.g. 2h")
    deadline: str | None = Field(None, description="latest finish, ISO-8601 UTC")
    trace_start: str | None = Field(None, description="trace time that 'now' maps to")
    trace_speed: float = Field(1.0, gt=0, description="trace seconds per wall second")
    trace_signal: Signal | None = Field(
        None, description="what a trace's values are, where its header does not say"
    )
    gpus: str | None = Field(None, description="GPU indices the job uses, e.g. '0,1'")
    shell: bool = Field(False, description="run the command through /bin/sh")
    request_timeout: float = Field(10.0, gt=0, description="seconds per HTTP request")
    request_retries: int = Field(3, ge=0, le=10, description="retries on timeouts and 5xx")
    cache_max_age_hours: float = Field(48.0, gt=0, description="oldest cached forecast served")

    evidence_file: Path | None = Field(None, description="SCI CSV (default HOME/evidence.csv)")
    decision_log: Path | None = Field(None, description="JSONL (default HOME/decisions.jsonl)")
    functional_unit: str = Field("run", description="SCI functional unit R")
    units: float = Field(1.0, gt=0, description="how many functional units one run yields")
    power_watts: float | None = Field(
        None, gt=0, description="declared draw of a job (W): replaces the meters when set"
    )
    embodied_kg_per_gpu: float = Field(150.0, ge=0, description="embodied kgCO2e of one GPU")
    embodied_kg_host: float = Field(1200.0, ge=0, description="embodied kgCO2e of the host")
    host_gpus: int = Field(8, ge=1, description="GPUs the host's embodied share is split over")
    hardware_lifetime_years: float = Field(4.0, gt=0, description="amortisation period")
    meters: str = Field("auto", description="auto, or a list such as 'nvml,codecarbon'")
    country_iso_code: str = Field("GBR", description="for CodeCarbon's offline tracker")

    watttime_username: str | None = Field(
        None, validation_alias=AliasChoices("WATTTIME_USERNAME", "GREENAI_WATTTIME_USERNAME")
    )
    watttime_password: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WATTTIME_PASSWORD", "GREENAI_WATTTIME_PASSWORD")
    )
    electricitymaps_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ELECTRICITYMAPS_TOKEN", "GREENAI_ELECTRICITYMAPS_TOKEN"),
    )
    electricitymaps_factor: Literal["lifecycle", "direct"] = Field(
        "lifecycle", description="which Electricity Maps emission factor is the figure"
    )
    locations: dict[str, LocationSpec] = Field(
        default_factory=dict,
        description="where jobs could run (`greenai where`): JSON such as "
        '\'{"PJM": {"source": "electricitymaps:US-MIDA-PJM"}}\' or [locations.PJM] tables',
    )

    api_host: str = Field("127.0.0.1", description="address the daemon listens on")
    api_port: int = Field(8787, ge=0, le=65535)
    api_url: str | None = Field(None, description="daemon URL for the CLI clients")
    api_token: SecretStr | None = Field(None, description="bearer token for changing state")
    public_read: bool = Field(False, description="let reads (jobs, plan, evidence) skip the token")
    database_url: str | None = Field(None, description="default sqlite:///HOME/greenai.db")
    env_key_file: Path | None = Field(
        None, description="keys sealing job env in the database (default HOME/env.key)"
    )
    tick_seconds: float = Field(60.0, gt=0, description="daemon re-plan period")
    gpu_slots: str = Field("1", description="a count ('4') or indices ('0,2,3')")
    max_flexible_fraction: float | None = Field(
        None,
        ge=0,
        le=1,
        description="fleet policy: at most this share of the queued GPU-hours waits for "
        "carbon; the jobs with the largest saving per GPU-hour stay flexible, the rest run "
        "as rigid (default: all flexible work may wait)",
    )
    executor: str = Field(
        "local", description="what runs the daemon's jobs: local, slurm or kubernetes"
    )
    job_env_allow: str = Field(
        "PATH,HOME,LANG,LANGUAGE,LC_ALL,LC_CTYPE,TZ,TMPDIR,USER,LOGNAME,SHELL,TERM,"
        "PYTHONPATH,PYTHONUNBUFFERED,VIRTUAL_ENV,CONDA_PREFIX,LD_LIBRARY_PATH,CUDA_HOME,CUDA_PATH",
        description="daemon environment variables a job inherits (comma-separated); the rest, "
        "credentials included, never reach jobs",
    )
    log_max_bytes: int = Field(100 * 2**20, ge=1024, description="a run's output.log size cap")
    log_backups: int = Field(2, ge=0, le=20, description="rotated output logs kept per run")
    retry_budget: int = Field(1, ge=0, description="re-queues of a job a crash interrupted")
    grace_seconds: float = Field(30.0, ge=0, description="SIGTERM grace for running jobs")
    pause_signal: str = Field(
        "SIGTERM", description="what pauses a piece of an interruptible job (it checkpoints)"
    )
    pause_grace_seconds: float = Field(
        30.0, ge=0, description="from the pause signal to SIGKILL, for the job to checkpoint"
    )
    budgets: dict[str, BudgetSpec] = Field(
        default_factory=dict,
        description="carbon budget per project, stored at serve start: JSON such as "
        '\'{"nlp": {"kg": 50, "period": "7d"}}\' or a [budgets.nlp] table',
    )

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        """An empty (or blank) token is no token: it must not unlock listening openly."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("locations")
    @classmethod
    def _linked_locations(cls, value: dict[str, LocationSpec]) -> dict[str, LocationSpec]:
        return dict(check_locations(value))

    @field_validator("pause_signal")
    @classmethod
    def _a_signal_name(cls, value: str) -> str:
        return signal_name(value)

    @property
    def pause_signum(self) -> int:
        return signal_number(self.pause_signal)

    @property
    def evidence_path(self) -> Path:
        return self.evidence_file or self.home / "evidence.csv"

    @property
    def decision_log_path(self) -> Path:
        return self.decision_log or self.home / "decisions.jsonl"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'greenai.db'}"

    @property
    def env_key_path(self) -> Path:
        """The job env keys; replicas sharing a database must share this file."""
        return self.env_key_file or self.home / "env.key"

    @property
    def resolved_api_url(self) -> str:
        return self.api_url or f"http://{self.api_host}:{self.api_port}"


class _MappingEnvSource(EnvSettingsSource):
    """Reads ``GREENAI_*`` variables from a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given_env = dict(env)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._given_env.items()}


class _TomlWithoutSecrets(TomlConfigSettingsSource):
    """greenai.toml may set anything except secrets, which belong in the environment; a file
    that is not TOML, or a key that is no setting (a typo would be silently ignored), is a
    ConfigError naming the file and the line or the key."""

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            values = super()._read_file(file_path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file_path}: {_toml_problem(exc)}") from exc
        unknown = [key for key in values if key not in Settings.model_fields]
        if unknown:
            raise ConfigError(f"{file_path}: {_unknown_key(unknown[0])}")
        return values

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        leaked = [name for name in SECRET_FIELDS if name in values]
        if leaked:
            raise ConfigError(
                f"{self.toml_file_path}: secrets ({', '.join(leaked)}) must come from the "
                "environment or a *_FILE, not the config file"
            )
        return values


def _toml_problem(exc: tomllib.TOMLDecodeError) -> str:
    """``line 3, column 12: invalid value`` from tomllib's ``Invalid value (at line 3, ...)``."""
    found = re.fullmatch(r"(.*) \(at (line \d+, column \d+|end of document)\)", str(exc))
    if found is None:
        return f"not valid TOML: {exc}"
    problem, where = found.groups()
    return f"{where}: {problem[:1].lower()}{problem[1:]} (not valid TOML)"


def _unknown_key(key: str) -> str:
    """``unknown setting 'threshhold' (did you mean 'threshold'?)``."""
    close = difflib.get_close_matches(key, Settings.model_fields, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else " (not a greenai setting)"
    return f"unknown setting {key!r}{hint}"


def signal_name(value: str) -> str:
    """``SIGTERM``, ``sigint``, ``USR1``: a signal this system has, by its full name;
    ``ValueError`` otherwise."""
    name = value.strip().upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    if name not in signal.Signals.__members__ or name.startswith("SIG_"):
        raise ValueError(f"{value!r} is not a signal name (SIGTERM, SIGINT, SIGUSR1, ...)")
    return name


def signal_number(value: str) -> int:
    """The number of the signal ``value`` names (``signal_name``)."""
    return int(signal.Signals[signal_name(value)])


def _read_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """``WATTTIME_PASSWORD_FILE=/run/secrets/x`` -> ``WATTTIME_PASSWORD`` (Docker/K8s style)."""
    resolved = dict(env)
    for name in (
        "WATTTIME_USERNAME",
        "WATTTIME_PASSWORD",
        "GREENAI_API_TOKEN",
        "ELECTRICITYMAPS_TOKEN",
    ):
        file_name = env.get(f"{name}_FILE")
        if file_name and name not in env:
            try:
                resolved[name] = Path(file_name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{name}_FILE={file_name}: cannot read: {exc.strerror}") from exc
    return resolved


def load_settings(
    env: Mapping[str, str] | None = None, config_file: Path | None = None, **overrides: Any
) -> Settings:
    """Build the settings from ``env`` (default ``os.environ``), a TOML file and overrides.

    Overrides whose value is ``None`` are ignored, so CLI flags left unset fall through.
    """
    environment = _read_secret_files(os.environ if env is None else env)
    toml_path = config_file or Path(environment.get("GREENAI_CONFIG", "greenai.toml"))
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"{config_file}: config file not found")
    given = {k: v for k, v in overrides.items() if v is not None}

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [
                init_settings,
                _MappingEnvSource(settings_cls, environment),
            ]
            if toml_path.is_file():
                sources.append(_TomlWithoutSecrets(settings_cls, toml_file=toml_path))
            return tuple(sources)

    try:
        loaded = _Loaded(**given)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc)) from exc
    return Settings.model_construct(**{k: getattr(loaded, k) for k in Settings.model_fields})


def _describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        problems.append(f"{field}: {error['msg']}")
    return "invalid settings: " + "; ".join(problems)
