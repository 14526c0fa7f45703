"""Jobs as the daemon keeps them: the rows of the store as frozen records.

``NewJob`` is what a client asks for; ``JobRecord`` is a stored job; ``Event`` is what the
store writes beside every transition (a policy ``Decision`` or a lifecycle event such as a
reconcile or a cancel), so the history of each job explains itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from greenai.core.domain import Decision, JobSpec, JobState


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


class PayloadWriter:
    """``json.dumps(decision_payload(d))``, byte for byte, for the many decisions of one planning
    pass: what they all share (time, forecast, provider) is encoded once from ``shared``, the
    rest per decision with the encoder's own string and float formatting. A re-plan of 10,000
    jobs spent more on building and dumping payload dicts than on planning them."""

    __slots__ = ("_head", "_intensity", "_isos", "_minimum", "_tail")

    def __init__(self, shared: Decision) -> None:
        text = {key: json.dumps(value) for key, value in decision_payload(shared).items()}
        self._head = f'{{"at": {text["at"]}, "job_id": '
        self._intensity = f', "intensity": {text["intensity"]}, "threshold": '
        self._minimum = f', "forecast_min": {text["forecast_min"]}, "planned_start": '
        self._tail = (
            "".join(
                f', "{key}": {text[key]}' for key in ("provider", "region", "signal", "fallback")
            )
            + f', "warnings": {text["warnings"]}, "forecast_intensity": '
        )
        self._isos: dict[datetime, str] = {}

    def render(
        self,
        job_ids: Sequence[str],
        policies: Sequence[str],
        actions: Sequence[str],
        reasons: Sequence[str],
        thresholds: Sequence[float | None],
        planned_starts: Sequence[datetime],
        deadlines: Sequence[datetime],
        expected: Sequence[float | None],
    ) -> list[str]:
        """The payloads of the decisions made of ``shared`` and these per-job fields (entry
        ``i`` of each for decision ``i``), encoded column by column."""
        head, intensity, minimum, tail = self._head, self._intensity, self._minimum, self._tail
        columns = zip(
            map(_string, job_ids),
            map(_string, policies),
            map(_string, actions),
            map(_string, reasons),
            map(_json, thresholds),
            map(self._time, planned_starts),
            map(self._time, deadlines),
            map(_json, expected),
            strict=True,
        )
        return [
            f'{head}{i}, "policy": {p}, "action": {a}, "reason": {r}{intensity}{t}{minimum}{s}'
            f', "deadline": {d}{tail}{e}}}'
            for i, p, a, r, t, s, d, e in columns
        ]

    def _time(self, at: datetime) -> str:
        """``_iso`` as JSON, once per distinct UTC time (a pass has few planned starts)."""
        if at.tzinfo is not UTC:  # equal times in other zones would share one text
            return _json(_iso(at))
        text = self._isos.get(at)
        if text is None:
            text = self._isos[at] = _json(_iso(at))
        return text


_string = json.encoder.encode_basestring_ascii  # what json.dumps writes a str with


def _json(value: Any) -> str:
    """``json.dumps(value)``, skipping the encoder's set-up for the common cases."""
    if value is None:
        return "null"
    if value.__class__ is str:
        return _string(value)
    if value.__class__ is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value)


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


@dataclass(frozen=True, slots=True)
class WaitingJobs:
    """Queued and scheduled jobs as columns, entry ``i`` of each for job ``i``: what a re-plan
    reads. Planning 10,000 jobs needs ten fields of each, not 10,000 records of twenty-eight."""

    ids: list[str]
    states: list[JobState]
    policies: list[str | None]
    thresholds: list[float | None]
    providers: list[str | None]
    submitted: list[datetime]
    deadlines: list[datetime]
    durations: list[float]  # seconds, in whole microseconds as a ``timedelta`` keeps them
    interruptible: list[bool]
    planned: list[datetime | None]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, records: Sequence[JobRecord]) -> WaitingJobs:
        return cls(
            [r.id for r in records],
            [r.state for r in records],
            [r.policy for r in records],
            [r.threshold for r in records],
            [r.provider for r in records],
            [r.submitted_at for r in records],
            [r.deadline for r in records],
            [r.duration.total_seconds() for r in records],
            [r.interruptible for r in records],
            [r.planned_start for r in records],
        )

    def take(self, indices: Sequence[int]) -> WaitingJobs:
        """The jobs at ``indices``, in that order."""
        columns = (getattr(self, column.name) for column in fields(self))
        return WaitingJobs(*([column[i] for i in indices] for column in columns))

    def by_provider(self, default: str) -> dict[str, WaitingJobs]:
        """The jobs grouped by the provider spec they plan with, in order of first appearance."""
        groups: dict[str, list[int]] = {}
        for index, provider in enumerate(self.providers):
            groups.setdefault(provider or default, []).append(index)
        if len(groups) == 1:
            return dict.fromkeys(groups, self)
        return {spec: self.take(indices) for spec, indices in groups.items()}


@dataclass(frozen=True, slots=True)
class PlanRows:
    """New planned starts of waiting jobs with the decision behind each, as columns: what
    ``Store.set_plans`` writes in one transaction. ``payloads`` are JSON text already."""

    job_ids: list[str]
    expected: list[str]  # the state each job must still be in (``JobState`` values)
    starts: list[datetime]
    ats: list[datetime]
    actions: list[str]
    reasons: list[str]
    payloads: list[str]

    def __len__(self) -> int:
        return len(self.job_ids)

    def take(self, indices: Sequence[int]) -> PlanRows:
        columns = (getattr(self, column.name) for column in fields(self))
        return PlanRows(*([column[i] for i in indices] for column in columns))
