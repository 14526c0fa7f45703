"""What the store keeps, as frozen records: jobs in their lives, their events, their runs.

A ``JobRecord`` is a ``Job`` (exactly as submitted) plus where it is in its life. ``Event`` is
what the store writes beside every transition: a policy decision or a lifecycle event (dispatch,
finish, reconcile, cancel), so the history of each job explains itself. The store never
encodes decisions itself: it is handed the JSON text (``greenai.evidence.encode_decision``),
stores it as written, and hands stored JSON back as parsed objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from greenai.core.domain import Job, JobState


@dataclass(frozen=True, slots=True)
class Submission:
    """A job to store; retries with the same ``idempotency_key`` store it once."""

    job: Job
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One stored job: the job as submitted, and where it is in its life.

    ``plan`` is the latest decision planned for it (the decision JSON as an object): when the
    job is dispatched, that is the decision that started it. ``handle`` is the executor's handle
    of its current run (JSON), which lets a restarted daemon find the run again.
    ``env_withheld`` says why ``job.env`` is ``None`` when the stored env could not be
    decrypted (``greenai.storage.env_cipher``). ``pieces`` and ``ran_s`` follow a job run in
    pieces (paused and resumed) between its pieces and across daemon restarts."""

    job: Job
    state: JobState
    attempts: int
    updated_at: datetime
    planned_start: datetime | None = None
    plan: dict[str, Any] | None = None
    idempotency_key: str | None = None
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    host: str | None = None
    gpu_ids: tuple[int, ...] = ()
    handle: dict[str, Any] | None = None
    log_path: str | None = None
    instance_id: str | None = None  # the daemon instance that runs it
    env_withheld: str | None = None
    pieces: int = 0  # pieces of an interruptible job launched so far; 0: it runs whole
    ran_s: float = 0.0  # seconds its finished pieces ran

    @property
    def id(self) -> str:
        return self.job.id


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """A daemon process sharing the database: where it runs and when it was last alive."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True, slots=True)
class Event:
    """What the store records with a transition: an action, a reason and a payload (JSON text:
    the encoded decision, or a small object for lifecycle events)."""

    at: datetime
    action: str
    reason: str
    payload: str = "{}"


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
    """One finished run as stored: the figures /jobs/{id} and /metrics show, and its SCI row
    (``evidence``, the cells keyed by column) until it is safely in the evidence file."""

    id: str
    job_id: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    exit_code: int | None
    energy_kwh: float | None  # None: nobody measured it
    meter: str
    actual_intensity: float | None = None
    operational_g: float | None = None
    embodied_g: float | None = None
    counterfactual_g: float | None = None
    saved_g: float | None = None
    delay_s: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)
    evidence_appended: bool = False


@dataclass(frozen=True, slots=True)
class WaitingJobs:
    """Queued and scheduled jobs as named columns, entry ``i`` of each for job ``i``: what a
    re-plan reads. Planning 10,000 jobs needs a dozen fields of each, not 10,000 records."""

    ids: list[str]
    states: list[JobState]
    policies: list[str | None]
    thresholds: list[float | None]
    providers: list[str | None]
    submitted: list[datetime]
    deadlines: list[datetime]
    durations: list[float]  # seconds, in whole microseconds as a ``timedelta`` keeps them
    interruptible: list[bool]
    gpus: list[int]
    flexible: list[bool]
    planned: list[datetime | None]
    projects: list[str | None]  # for admission under carbon budgets
    power_kw: list[float]  # declared draw; 0: unknown
    # when the current plan was made (a scheduled job's last update): a plan made before its
    # start was a deferral, one made at it a start that had to wait for a slot
    planned_at: list[datetime | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, indices: Sequence[int]) -> WaitingJobs:
        """The jobs at ``indices``, in that order."""
        return WaitingJobs(
            **{column.name: _pick(getattr(self, column.name), indices) for column in fields(self)}
        )

    def group_by(self, *keys: Sequence[Any]) -> dict[tuple[Any, ...], WaitingJobs]:
        """The jobs grouped by the values of ``keys`` (columns of this length), in order of
        first appearance."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, key in enumerate(zip(*keys, strict=True)):
            groups.setdefault(key, []).append(index)
        if len(groups) == 1:
            return dict.fromkeys(groups, self)
        return {key: self.take(indices) for key, indices in groups.items()}


@dataclass(frozen=True, slots=True)
class PlanRows:
    """New planned starts of waiting jobs with the decision behind each, as named columns:
    what ``Store.set_plans`` writes in one transaction. ``payloads`` are the encoded
    decisions, stored as written (as the event's payload and as the job's current plan)."""

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
        return PlanRows(
            **{
                column.name: [getattr(self, column.name)[i] for i in indices]
                for column in fields(self)
            }
        )


def _pick(values: list[Any], indices: Sequence[int]) -> list[Any]:
    """``values`` at ``indices``; a column left empty (``planned_at`` where nobody read it)
    stays empty."""
    return [values[i] for i in indices] if values else []
