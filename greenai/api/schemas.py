"""Request and response bodies of the REST API (kept apart from the tables)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from greenai.api.power import LivePower, live_power
from greenai.core.settings import signal_name
from greenai.core.time import parse_duration
from greenai.policies.registry import policy_names
from greenai.storage.records import EventRecord, JobRecord, RunSummary

if TYPE_CHECKING:
    PolicyName = StrEnum
else:
    # The policies a daemon can run, read from the registry: the OpenAPI enum follows it.
    PolicyName = StrEnum(
        "PolicyName", [(name.replace("-", "_"), name) for name in policy_names(online=True)]
    )


MAX_SPAN = timedelta(days=366)  # longest duration, wait or deadline horizon a job may ask for
MAX_ARGS = 4096
MAX_ARG_CHARS = 65_536
MAX_ARGV_BYTES = 256 * 1024
MAX_ENV_KEYS = 1024
MAX_ENV_VALUE_CHARS = 64 * 1024
MAX_ENV_BYTES = 256 * 1024
MAX_TEXT = 200  # name, project, provider
MAX_PATH = 4096  # cwd (PATH_MAX)
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"  # what execve's callers and shells accept


def clean_text(value: str) -> str:
    """No NUL (argv, env and PostgreSQL text cannot hold one) and no lone surrogate (it
    cannot be encoded as UTF-8, so a stored one would break every later read)."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogate)") from None
    return value


SafeStr = Annotated[str, AfterValidator(clean_text)]


def _seconds(value: Any) -> float:
    """Seconds, or a duration text, finite and within ``MAX_SPAN``: a bigger one overflows
    ``datetime`` arithmetic further on."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("give seconds or a duration such as 90s, 15m, 2h")
    try:
        seconds = parse_duration(value).total_seconds() if isinstance(value, str) else value
        seconds = float(seconds)
    except OverflowError:
        raise ValueError("is too long (at most 366 days)") from None
    if not math.isfinite(seconds):
        raise ValueError("must be a finite number")
    if seconds <= 0:
        raise ValueError("must be positive")
    if seconds > MAX_SPAN.total_seconds():
        raise ValueError("is too long (at most 366 days)")
    return seconds


def _check_argv(value: list[str]) -> list[str]:
    if not value[0]:
        raise ValueError("the program (first item) must not be empty")
    if sum(len(arg.encode()) + 1 for arg in value) > MAX_ARGV_BYTES:
        raise ValueError(f"argv is over {MAX_ARGV_BYTES} bytes in all")
    return value


def _check_env(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    size = sum(len(k.encode()) + len(v.encode()) + 2 for k, v in value.items())
    if size > MAX_ENV_BYTES:
        raise ValueError(f"env is over {MAX_ENV_BYTES} bytes in all")
    return value


class JobIn(BaseModel):
    """A job to run: argv, how long it takes, and by when it must be done."""

    model_config = ConfigDict(extra="forbid")

    command: Annotated[
        # an empty argument is a real one (grep ""); ``_check_argv`` refuses an empty program
        list[Annotated[SafeStr, Field(max_length=MAX_ARG_CHARS)]],
        Field(min_length=1, max_length=MAX_ARGS, description="argv; no shell"),
        AfterValidator(_check_argv),
    ]
    name: SafeStr | None = Field(None, max_length=MAX_TEXT)
    duration: float = Field(
        gt=0, le=MAX_SPAN.total_seconds(), description="estimated run time: seconds or '2h'"
    )
    deadline: datetime | None = Field(None, description="latest finish (ISO-8601, < 1 year)")
    max_delay: float | None = Field(
        None, gt=0, le=MAX_SPAN.total_seconds(), description="or: longest wait before starting"
    )
    max_runtime: float | None = Field(
        None,
        gt=0,
        le=MAX_SPAN.total_seconds(),
        description="stop a run this long after it starts (SIGTERM, grace, SIGKILL): seconds "
        "or '2h'",
    )
    gpus: int = Field(1, ge=1, le=64)
    interruptible: bool = False
    pause_signal: str | None = Field(
        None, max_length=16, description="pauses it to checkpoint (e.g. 'SIGUSR1'); default: the "
        "daemon's pause_signal",
    )  # fmt: skip
    pause_grace: float | None = Field(
        None, ge=0, le=MAX_SPAN.total_seconds(), description="from the pause signal to SIGKILL: "
        "seconds or '5m'; default: the daemon's pause_grace_seconds",
    )  # fmt: skip
    on_deadline: Literal["run", "expire"] = "run"
    flexible: bool = Field(True, description="false: rigid, starts as soon as a slot is free")
    policy: PolicyName | None = Field(None, description="default: the daemon's policy")
    threshold: float | None = Field(None, ge=0, allow_inf_nan=False)
    project: SafeStr | None = Field(None, max_length=MAX_TEXT)
    power_kw: float = Field(
        0.0, ge=0, le=1000, allow_inf_nan=False, description="declared average draw, kW: its "
        "carbon budget estimate (0: the daemon's power_watts, else a TDP model)",
    )  # fmt: skip
    provider: SafeStr | None = Field(
        None, max_length=MAX_TEXT, description="e.g. 'uk:13,egrid:RFCE'"
    )
    cwd: SafeStr | None = Field(None, min_length=1, max_length=MAX_PATH)
    env: Annotated[
        dict[
            Annotated[SafeStr, Field(pattern=ENV_NAME)],
            Annotated[SafeStr, Field(max_length=MAX_ENV_VALUE_CHARS)],
        ]
        | None,
        Field(max_length=MAX_ENV_KEYS),
        AfterValidator(_check_env),
    ] = None

    @field_validator("pause_signal")
    @classmethod
    def _signal(cls, value: str | None) -> str | None:
        return None if value is None else signal_name(value)

    @field_validator("duration", "max_delay", "max_runtime", "pause_grace", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else _seconds(value)

    @field_validator("max_runtime")
    @classmethod
    def _whole_microseconds(cls, value: float | None) -> float | None:
        """A job keeps its max runtime as a ``timedelta``: one that rounds to nothing is none."""
        if value is not None and timedelta(seconds=value) <= timedelta(0):
            raise ValueError("must be at least a microsecond")
        return value

    @field_validator("deadline")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """Aware, and in UTC: an offset near year 1 or 9999 would overflow later sums."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give a timezone (e.g. a trailing Z for UTC)")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range") from None

    def resolved_deadline(self, now: datetime, default_delay: timedelta) -> datetime:
        if self.deadline is not None:
            return self.deadline
        delay = timedelta(seconds=self.max_delay) if self.max_delay else default_delay
        return now + delay + timedelta(seconds=self.duration)


class JobOut(BaseModel):
    id: str
    name: str
    command: list[str]
    state: str
    on_deadline: str
    submitted_at: datetime
    deadline: datetime
    duration_s: float
    max_runtime_s: float | None
    gpus: int
    interruptible: bool
    flexible: bool
    policy: str | None
    threshold: float | None
    project: str | None
    power_kw: float = 0.0
    provider: str | None
    planned_start: datetime | None
    attempts: int
    cancel_requested: bool
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    host: str | None
    gpu_ids: list[int]
    log_path: str | None
    env_withheld: str | None = Field(
        None, description="why the job's env could not be decrypted (env is never returned)"
    )
    pause_signal: str | None = None
    pause_grace_s: float | None = None
    pieces: int = Field(0, description="pieces launched of a job run in pieces; 0: run whole")
    ran_s: float = Field(0.0, description="seconds its finished pieces ran")
    power: LivePower | None = Field(
        None, description="a running job's draw now, when its meters can tell (NVML, estimate)"
    )

    @classmethod
    def of(cls, record: JobRecord) -> JobOut:
        job = record.job
        return cls(
            id=job.id,
            name=job.name,
            command=list(job.command),
            state=str(record.state),
            on_deadline=str(job.on_deadline),
            submitted_at=job.submitted_at,
            deadline=job.deadline,
            duration_s=job.duration.total_seconds(),
            max_runtime_s=None if job.max_runtime is None else job.max_runtime.total_seconds(),
            gpus=job.gpus,
            interruptible=job.interruptible,
            flexible=job.flexible,
            policy=job.policy,
            threshold=job.threshold,
            project=job.project,
            power_kw=job.power_kw,
            provider=job.provider,
            planned_start=record.planned_start,
            attempts=record.attempts,
            cancel_requested=record.cancel_requested,
            started_at=record.started_at,
            finished_at=record.finished_at,
            exit_code=record.exit_code,
            host=record.host,
            gpu_ids=list(record.gpu_ids),
            log_path=record.log_path,
            env_withheld=record.env_withheld,
            pause_signal=job.pause_signal,
            pause_grace_s=None if job.pause_grace is None else job.pause_grace.total_seconds(),
            pieces=record.pieces,
            ran_s=record.ran_s,
            power=live_power(record),
        )


class DecisionOut(BaseModel):
    at: datetime
    action: str
    reason: str
    from_state: str | None
    to_state: str | None
    payload: dict[str, Any]

    @classmethod
    def of(cls, event: EventRecord) -> DecisionOut:
        return cls(
            at=event.at,
            action=event.action,
            reason=event.reason,
            from_state=event.from_state,
            to_state=event.to_state,
            payload=event.payload,
        )


class RunOut(BaseModel):
    id: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    exit_code: int | None
    energy_kwh: float | None
    meter: str
    actual_intensity: float | None
    operational_g: float | None
    embodied_g: float | None
    counterfactual_g: float | None
    saved_g: float | None
    delay_s: float

    @classmethod
    def of(cls, run: RunSummary) -> RunOut:
        return cls(**{name: getattr(run, name) for name in cls.model_fields})


class RunsTotal(BaseModel):
    """A job's runs summed (its pieces, for a job run in pieces); a figure any run lacks is
    unknown (``None``) in the sum too, never counted as 0."""

    runs: int
    duration_s: float
    energy_kwh: float | None
    operational_g: float | None
    embodied_g: float | None
    saved_g: float | None

    @classmethod
    def of(cls, runs: list[RunSummary]) -> RunsTotal:
        def total(name: str) -> float | None:
            values = [getattr(run, name) for run in runs]
            return None if any(v is None for v in values) else float(sum(values))

        seconds = sum((run.finished_at - run.started_at).total_seconds() for run in runs)
        parts = ("energy_kwh", "operational_g", "embodied_g", "saved_g")
        return cls(runs=len(runs), duration_s=seconds, **{name: total(name) for name in parts})


class JobDetail(JobOut):
    decisions: list[DecisionOut]
    evidence: list[RunOut]
    total: RunsTotal = Field(description="the evidence of its runs (pieces) summed")


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int
