"""Request and response bodies of the REST API (kept apart from the tables)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


def _seconds(value: Any) -> float:
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_duration(value).total_seconds()
    else:
        raise ValueError("give seconds or a duration such as 90s, 15m, 2h")
    if seconds <= 0:
        raise ValueError("must be positive")
    return seconds


class JobIn(BaseModel):
    """A job to run: argv, how long it takes, and by when it must be done."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] = Field(min_length=1, description="argv; no shell")
    name: str | None = Field(None, max_length=200)
    duration: float = Field(description="estimated run time: seconds or '2h'")
    deadline: datetime | None = Field(None, description="latest finish (ISO-8601)")
    max_delay: float | None = Field(None, description="or: longest wait before starting")
    gpus: int = Field(1, ge=1, le=64)
    interruptible: bool = False
    on_deadline: Literal["run", "expire"] = "run"
    flexible: bool = Field(True, description="false: rigid, starts as soon as a slot is free")
    policy: PolicyName | None = Field(None, description="default: the daemon's policy")
    threshold: float | None = Field(None, ge=0)
    project: str | None = Field(None, max_length=200)
    provider: str | None = Field(None, max_length=200, description="e.g. 'uk:13,egrid:RFCE'")
    cwd: str | None = None
    env: dict[str, str] | None = None

    @field_validator("duration", "max_delay", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else _seconds(value)

    @field_validator("command")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("the program (first item) must not be empty")
        return value

    @field_validator("deadline")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a timezone (e.g. a trailing Z for UTC)")
        return value

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
    gpus: int
    interruptible: bool
    flexible: bool
    policy: str | None
    threshold: float | None
    project: str | None
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
            gpus=job.gpus,
            interruptible=job.interruptible,
            flexible=job.flexible,
            policy=job.policy,
            threshold=job.threshold,
            project=job.project,
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
    energy_kwh: float
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


class JobDetail(JobOut):
    decisions: list[DecisionOut]
    evidence: list[RunOut]


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int
