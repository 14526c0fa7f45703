"""Jobs as the daemon keeps them: the rows of the store as frozen records.

``NewJob`` is what a client asks for; ``JobRecord`` is a stored job; ``Event`` is what the
store writes beside every transition (a policy ``Decision`` or a lifecycle event such as a
reconcile or a cancel), so the history of each job explains itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from greenai.domain import Decision, JobSpec, JobState


class OnDeadline(StrEnum):
    """What happens to a job that has not started when its deadline comes."""

    RUN = "run"  # start it anyway (late is better than never)
    EXPIRE = "expire"  # give up: the result is worthless after the deadline


@dataclass(frozen=True, slots=True)
class NewJob:
    """A submission, validated by the API; the store gives it an id and a state."""

    name: str
    command: tuple[str, ...]
    submitted_at: datetime
    deadline: datetime
    duration: timedelta
    gpus: int = 1
    interruptible: bool = False
    on_deadline: OnDeadline = OnDeadline.RUN
    cwd: str | None = None
    env: dict[str, str] | None = None
    policy: str | None = None
    threshold: float | None = None
    project: str | None = None
    provider: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One stored job, as read from the store."""

    id: str
    name: str
    command: tuple[str, ...]
    state: JobState
    on_deadline: OnDeadline
    submitted_at: datetime
    deadline: datetime
    duration: timedelta
    gpus: int
    interruptible: bool
    attempts: int
    updated_at: datetime
    cwd: str | None = None
    env: dict[str, str] | None = None
    policy: str | None = None
    threshold: float | None = None
    project: str | None = None
    provider: str | None = None
    planned_start: datetime | None = None
    idempotency_key: str | None = None
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    host: str | None = None
    gpu_ids: tuple[int, ...] = ()
    pid: int | None = None
    log_path: str | None = None

    @property
    def latest_start(self) -> datetime:
        return self.deadline - self.duration

    def spec(self) -> JobSpec:
        """The job as policies see it."""
        return JobSpec(
            id=self.id,
            submit=self.submitted_at,
            duration=self.duration,
            deadline=self.deadline,
            interruptible=self.interruptible,
            gpus=self.gpus,
            name=self.name,
        )


@dataclass(frozen=True, slots=True)
class Event:
    """What the store records with a transition: an action, a reason and a payload."""

    at: datetime
    action: str
    reason: str
    payload: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_decision(cls, decision: Decision) -> Event:
        return cls(decision.at, str(decision.action), decision.reason, decision_payload(decision))


def decision_payload(decision: Decision) -> dict[str, Any]:
    """A decision as the JSON object of the decision log (formats.md §5). Written out field by
    field: the daemon turns thousands of decisions into payloads per re-plan."""
    return {
        "at": _iso(decision.at),
        "job_id": decision.job_id,
        "policy": decision.policy,
        "action": str(decision.action),
        "reason": decision.reason,
        "intensity": decision.intensity,
        "threshold": decision.threshold,
        "forecast_min": decision.forecast_min,
        "planned_start": _iso(decision.planned_start),
        "deadline": _iso(decision.deadline),
        "provider": decision.provider,
        "region": decision.region,
        "signal": str(decision.signal) if decision.signal else None,
        "fallback": decision.fallback,
        "warnings": list(decision.warnings),
        "forecast_intensity": decision.forecast_intensity,
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored decision or lifecycle event of a job."""

    job_id: str
    at: datetime
    action: str
    reason: str
    from_state: JobState | None
    to_state: JobState | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One finished run as stored (the accounting behind its SCI row)."""

    id: str
    job_id: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    exit_code: int | None
    energy_kwh: float
    meter: str
    actual_intensity: float | None = None
    operational_g: float | None = None
    embodied_g: float | None = None
    counterfactual_g: float | None = None
    saved_g: float | None = None
    delay_s: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)
