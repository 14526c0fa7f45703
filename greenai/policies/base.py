"""The policy interface: a batch of jobs, the forecast view, the moment and the capacity in;
a plan out.

Every front-end (`greenai run`, the daemon, `greenai simulate`) plans through the same
registered ``Policy`` objects (``registry.py``). Policies work on a float-seconds time axis
chosen by the caller (``JobBatch.origin`` is its 0), so one decision over thousands of jobs
costs a few numpy operations, never a per-job loop over minutes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from greenai.core.domain import Job
from greenai.policies.view import EPS, ForecastView
from greenai.policies.windows import FloatArray

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]
Pieces = tuple[tuple[float, float], ...]


@dataclass(frozen=True, eq=False)
class JobBatch:
    """Jobs to plan as columns, entry ``i`` of each for job ``i``; times are seconds after
    ``origin``. ``remaining`` is the running time a job still needs (its duration until it has
    run); ``threshold`` is NaN where a job has none of its own. ``deadline_at`` keeps the exact
    deadlines for the decisions written about these jobs."""

    origin: datetime
    ids: Sequence[str]
    deadline_at: Sequence[datetime]
    submit: FloatArray
    duration: FloatArray
    deadline: FloatArray
    remaining: FloatArray
    interruptible: BoolArray
    gpus: IntArray
    flexible: BoolArray
    threshold: FloatArray

    def __post_init__(self) -> None:
        sizes = {len(self.ids), len(self.deadline_at)} | {
            column.size
            for column in (
                self.submit,
                self.duration,
                self.deadline,
                self.remaining,
                self.interruptible,
                self.gpus,
                self.flexible,
                self.threshold,
            )
        }
        if len(sizes) != 1:
            raise ValueError(f"job batch columns differ in length: {sorted(sizes)}")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def latest_start(self) -> FloatArray:
        return self.deadline - self.duration

    def at(self, seconds: float) -> datetime:
        """The time ``seconds`` after the axis origin."""
        return self.origin + timedelta(seconds=seconds)

    def take(self, indices: Sequence[int] | IntArray) -> JobBatch:
        """The jobs at ``indices``, in that order."""
        picked = np.asarray(indices, dtype=np.int64)
        chosen = picked.tolist()
        return JobBatch(
            self.origin,
            [self.ids[i] for i in chosen],
            [self.deadline_at[i] for i in chosen],
            self.submit[picked],
            self.duration[picked],
            self.deadline[picked],
            self.remaining[picked],
            self.interruptible[picked],
            self.gpus[picked],
            self.flexible[picked],
            self.threshold[picked],
        )

    @classmethod
    def of(cls, jobs: Sequence[Job], origin: datetime) -> JobBatch:
        """``jobs`` on the axis that starts at ``origin`` (none of them has run yet)."""
        return cls.columns(
            origin,
            ids=[job.id for job in jobs],
            submitted_at=[job.submitted_at for job in jobs],
            deadline_at=[job.deadline for job in jobs],
            duration_s=[job.duration.total_seconds() for job in jobs],
            interruptible=[job.interruptible for job in jobs],
            gpus=[job.gpus for job in jobs],
            flexible=[job.flexible for job in jobs],
            threshold=[job.threshold for job in jobs],
        )

    @classmethod
    def columns(
        cls,
        origin: datetime,
        *,
        ids: Sequence[str],
        submitted_at: Sequence[datetime],
        deadline_at: Sequence[datetime],
        duration_s: Sequence[float],
        interruptible: Sequence[bool],
        gpus: Sequence[int] | None = None,
        flexible: Sequence[bool] | None = None,
        threshold: Sequence[float | None] | None = None,
        remaining_s: Sequence[float] | None = None,
    ) -> JobBatch:
        """A batch from columns given by name (what a store reads for a re-plan)."""
        count = len(ids)
        duration = np.asarray(duration_s, dtype=np.float64)
        return cls(
            origin,
            ids,
            deadline_at,
            _seconds_after(origin, submitted_at),
            duration,
            _seconds_after(origin, deadline_at),
            duration.copy() if remaining_s is None else np.asarray(remaining_s, dtype=np.float64),
            np.asarray(interruptible, dtype=np.bool_).reshape(count),
            np.ones(count, dtype=np.int64) if gpus is None else np.asarray(gpus, dtype=np.int64),
            np.ones(count, np.bool_) if flexible is None else np.asarray(flexible, np.bool_),
            _thresholds(threshold, count),
        )


def _seconds_after(origin: datetime, times: Sequence[datetime]) -> FloatArray:
    """Seconds from ``origin`` to each time, computed once per distinct time (a queue shares
    submission times and deadlines)."""
    done: dict[datetime, float] = {}
    out = np.empty(len(times), dtype=np.float64)
    for i, at in enumerate(times):
        seconds = done.get(at)
        if seconds is None:
            seconds = done[at] = (at - origin).total_seconds()
        out[i] = seconds
    return out


def _thresholds(values: Sequence[float | None] | None, count: int) -> FloatArray:
    if values is None:
        return np.full(count, np.nan)
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Holds:
    """GPU slots already held on the axis, entry ``i`` for one hold: a running job from now
    to its declared end, or a job waiting for slots. A capacity planner needs when slots free
    up, not only how many are busy now. ``rigid`` marks holds of rigid work."""

    start: FloatArray
    end: FloatArray
    gpus: IntArray
    rigid: BoolArray


@dataclass(frozen=True, eq=False)
class RigidDemand:
    """Mean GPUs asked for by rigid jobs (as if each ran from its submit for its declared
    duration) in each whole UTC hour seen so far: ``hourly[i]`` is epoch hour
    ``first_hour + i``. Only hours that have ended are given, so a forecast made from it
    uses arrivals seen so far and nothing later."""

    first_hour: int
    hourly: FloatArray


@dataclass(frozen=True, slots=True)
class Capacity:
    """GPU slots: how many there are in all (``None``: no limit) and how many the jobs
    already running hold; optionally when held slots free up (``holds``) and the rigid
    demand seen so far (``rigid_demand``), for planners that place work in time."""

    slots: int | None = None
    in_use: int = 0
    holds: Holds | None = None
    rigid_demand: RigidDemand | None = None

    @property
    def free(self) -> int | None:
        return None if self.slots is None else max(0, self.slots - self.in_use)


UNLIMITED = Capacity()


@dataclass(frozen=True, eq=False)
class BatchPlan:
    """A policy's answer, entry ``i`` for job ``i`` of the batch it was given.

    - ``starts``: when the job starts (at or before ``now``: now); for a job run in pieces,
      when its next piece starts.
    - ``expected``: the mean intensity the policy expects over the run; NaN where it did not
      look (the decision then states the forecast's mean over the planned run).
    - ``reasons``: why, in the words the decision log shows.
    - ``run_for``: for jobs run in pieces, seconds to run from now before asking again (0: stay
      paused); NaN for jobs run whole. ``None`` when no job of the batch runs in pieces.
    - ``pieces``: the planned pieces of each job where the policy planned pieces, else ``None``.
    """

    starts: FloatArray
    expected: FloatArray
    reasons: list[str]
    run_for: FloatArray | None = None
    pieces: list[Pieces | None] | None = None

    def starts_now(self, now: float) -> BoolArray:
        """Which jobs this plan starts (or runs a piece of) at ``now``."""
        if self.run_for is None:
            return self.starts <= now + EPS
        in_pieces = ~np.isnan(self.run_for)
        return np.where(in_pieces, self.run_for > EPS, self.starts <= now + EPS)


class Policy(ABC):
    """A scheduling policy, registered by name (``registry.register``) and read by every
    front-end. ``plan`` is pure: no I/O, no clock; everything it knows is in its arguments.

    The class attributes tell front-ends how to drive it:

    - ``online``: plans from forecasts. ``False`` only for the offline optimum, which is given
      the actual intensity and exists to measure the others against (simulate only).
    - ``commits``: keeps the start it planned first (planned once, at submit) instead of being
      asked again at every step until the job starts.
    - ``pauses``: runs interruptible jobs in pieces (needs an executor that can pause them; on
      one that cannot, front-ends plan those jobs whole).
    - ``capacity_bound``: its plans are held to the GPU capacity (the oracle is not: it is a
      lower bound).
    - ``needs_duration``: plans with the job's duration (a window), so a job must declare one.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    rank: ClassVar[int] = 100  # listing order: simplest first
    online: ClassVar[bool] = True
    commits: ClassVar[bool] = False
    pauses: ClassVar[bool] = False
    capacity_bound: ClassVar[bool] = True
    needs_duration: ClassVar[bool] = False

    @abstractmethod
    def plan(self, jobs: JobBatch, view: ForecastView, now: float, capacity: Capacity) -> BatchPlan:
        """What to do with each job of ``jobs`` at ``now``, given what ``view`` shows."""

    def __repr__(self) -> str:
        return f"<policy {self.name}>"
