"""The virtual clock: a discrete-event loop over submits, step boundaries, starts and ends.

Decisions happen at a job's submit and at every trace step boundary after it, the moments a
daemon ticking once per step would have. All jobs due for a decision at one moment are planned
in one call of the policy (as the daemon plans its queue), then the answers are applied in
event order. A planned start that falls before the next boundary is honoured exactly
(mid-step), so the simulator loses nothing to its own granularity.

How a job is driven follows the policy's attributes: an offline policy (the oracle) plans every
job once with the actual intensity; a policy that ``pauses`` is asked at every step how long to
run each interruptible job; any other job is asked when to start, at every step until it starts
(or once, for a policy that ``commits``).

Capacity (``--capacity N`` GPU slots): a start that does not fit waits in a queue (rigid jobs
first, then in queueing order) and begins as soon as a running job frees enough slots; an
interruptible piece that does not fit is skipped for that step. Rigid jobs are served first
come first served: while one waits, nothing starts ahead of it (an 8-GPU job otherwise starved
behind smaller jobs that took each freed slot, and missed its SLA by up to an hour). Rigid
jobs (``flexible=0``) ignore the policy and start at submit, before the policy is asked about
the others at that moment. A job still unfinished when the trace ends is late. With a
capacity the policy is also told when held slots free up (running and waiting jobs, at their
declared durations) and the rigid demand of every hour that has ended (``RigidDemand``): what
a capacity planner needs and what a daemon knows at that moment.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from greenai.core.domain import Job
from greenai.policies.base import UNLIMITED, Capacity, Holds, JobBatch, Policy, RigidDemand
from greenai.policies.rigid_demand import rigid_hourly
from greenai.policies.view import EPS, ForecastView
from greenai.policies.windows import FloatArray

FINISH, STEP, DECIDE, START = 0, 1, 2, 3  # same-moment order: free slots before using them


@dataclass
class JobRun:
    """One job's progress through the simulation (times in seconds from the trace start)."""

    job: Job
    submit: float
    deadline: float
    remaining: float
    segments: list[tuple[float, float]] = field(default_factory=list)
    rejected: bool = False  # refused at admission (a carbon budget): it never runs

    @property
    def rigid(self) -> bool:
        return not self.job.flexible


class ViewSource(Protocol):
    """What the engine asks for the forecast visible at a moment (``ForecastModel``)."""

    def view_at(self, t: float) -> ForecastView: ...


class Admission(Protocol):
    """Admission control asked before a job starts (``greenai.simulate.budget``)."""

    def admit(self, index: int, at: float) -> float | None:
        """``None``: start; else when to decide again (``inf``: rejected, never)."""
        ...

    def finished(self, index: int, at: float) -> None: ...


class Engine:
    """Runs one policy over one workload; ``run`` returns each job's segments."""

    def __init__(
        self, batch: JobBatch, jobs: list[Job], policy: Policy, forecasts: ViewSource,
        step_s: float, span_s: float, capacity: int | None = None,
        actual: ForecastView | None = None,
    ) -> None:  # fmt: skip
        self.batch = batch
        self.runs = [
            JobRun(job, submit, deadline, duration)
            for job, submit, deadline, duration in zip(
                jobs, batch.submit.tolist(), batch.deadline.tolist(), batch.duration.tolist(),
                strict=True,
            )
        ]  # fmt: skip
        self.policy = policy
        self.forecasts = forecasts
        self.actual = actual
        self.step = step_s
        self.span = span_s
        self.capacity = capacity if policy.capacity_bound else None
        self.used = 0
        self.waiting: list[int] = []
        self.rigid_waiting = 0
        self.running: dict[int, float] = {}  # job index -> end of its current piece
        self.rigid_hourly = _rigid_hourly(batch) if self.capacity is not None else None
        self._events: list[tuple[float, int, int, int, int]] = []
        self._seq = 0
        self.admission: Admission | None = None

    def run(self) -> list[JobRun]:
        if not self.policy.online:
            self._plan_offline()
        for index, job in enumerate(self.runs):
            if not self.policy.online and not job.rigid:
                continue  # planned offline
            steps = self.policy.pauses and job.job.interruptible and not job.rigid
            self._push(job.submit, STEP if steps else DECIDE, index)
        while self._events:
            at, kind, _, _, index = heapq.heappop(self._events)
            if kind == FINISH:
                self._finish(index, at)
            elif at >= self.span - EPS:
                continue
            elif kind == START:
                self._start(index, at)
            else:
                self._decide_all(kind, [index, *self._pop_same(at, kind)], at)
        return self.runs

    def _plan_offline(self) -> None:
        """The offline optimum is planned once, knowing the actual intensity."""
        flexible = [i for i, job in enumerate(self.runs) if not job.rigid]
        if not flexible or self.actual is None:
            return
        plan = self.policy.plan(self.batch.take(flexible), self.actual, 0.0, UNLIMITED)
        for index, pieces in zip(flexible, plan.pieces or [], strict=True):
            self.runs[index].segments = list(pieces or ())
            self.runs[index].remaining = 0.0

    def _pop_same(self, at: float, kind: int) -> list[int]:
        """The other jobs due for the same kind of decision at the same moment."""
        same = []
        while self._events and self._events[0][0] == at and self._events[0][1] == kind:
            same.append(heapq.heappop(self._events)[4])
        return same

    def _push(self, at: float, kind: int, index: int) -> None:
        self._seq += 1
        rigid_first = 0 if self.runs[index].rigid else 1
        heapq.heappush(self._events, (at, kind, rigid_first, self._seq, index))

    def _next_boundary(self, at: float) -> float:
        return (math.floor(at / self.step + EPS) + 1) * self.step

    def _fits(self, job: JobRun) -> bool:
        """Room for a new start: nothing starts ahead of a rigid job already waiting."""
        return self.capacity is None or (not self.rigid_waiting and self._room(job))

    def _room(self, job: JobRun) -> bool:
        return self.capacity is None or self.used + job.job.gpus <= self.capacity

    def _decide_all(self, kind: int, indices: list[int], at: float) -> None:
        """Ask the policy about every job in ``indices`` at once, then act in their order."""
        for index in indices:
            if self.runs[index].rigid:  # starts at submit, capacity permitting
                self._start(index, at)
        asked = [i for i in indices if not self.runs[i].rigid]
        if not asked:
            return
        remaining = np.asarray([self.runs[i].remaining for i in asked], dtype=np.float64)
        batch = replace(self.batch.take(asked), remaining=remaining)
        plan = self.policy.plan(batch, self.forecasts.view_at(at), at, self._capacity(at))
        run_for = plan.run_for if plan.run_for is not None else np.full(len(asked), np.nan)
        for index, start, length in zip(asked, plan.starts.tolist(), run_for.tolist(), strict=True):
            if kind == STEP:
                self._step(index, at, length)
            else:
                self._plan_start(index, at, start)

    def _plan_start(self, index: int, at: float, planned: float) -> None:
        boundary = self._next_boundary(at)
        if self.policy.commits or planned < boundary - EPS:
            self._push(max(planned, at), START, index)
        else:
            self._push(boundary, DECIDE, index)

    def _start(self, index: int, at: float) -> None:
        job = self.runs[index]
        if (again := self._admit(index, at)) is not None:
            if not job.rejected:
                self._push(again, DECIDE, index)
            return
        if not self._fits(job):
            self.waiting.append(index)
            self.rigid_waiting += job.rigid
            return
        self._run_piece(job, index, at, job.remaining)

    def _run_piece(self, job: JobRun, index: int, at: float, length: float) -> None:
        self.used += job.job.gpus
        self.running[index] = at + length
        job.segments.append((at, at + length))
        job.remaining -= length
        self._push(at + length, FINISH, index)

    def _admit(self, index: int, at: float) -> float | None:
        """``None``: the job may start; else when to decide again (it is held), or ``inf``
        with the job marked rejected."""
        again = None if self.admission is None else self.admission.admit(index, at)
        if again is not None and math.isinf(again):
            self.runs[index].rejected = True
        return again

    def _step(self, index: int, at: float, run_for: float) -> None:
        job = self.runs[index]
        if run_for > EPS and self._fits(job) and self._admit(index, at) is None:
            self._run_piece(job, index, at, run_for)
        if job.remaining > EPS and not job.rejected:
            self._push(self._next_boundary(at), STEP, index)

    def _finish(self, index: int, at: float) -> None:
        self.used -= self.runs[index].job.gpus
        self.running.pop(index, None)
        if self.admission is not None and self.runs[index].remaining <= EPS:
            self.admission.finished(index, at)
        still_waiting: list[int] = []
        blocked = False  # a rigid job that still waits keeps every later one waiting
        for waiting in sorted(self.waiting, key=lambda i: not self.runs[i].rigid):
            job = self.runs[waiting]
            if at < self.span - EPS and not blocked and self._room(job):
                self._run_piece(job, waiting, at, job.remaining)
            else:
                still_waiting.append(waiting)
                blocked = blocked or job.rigid
        self.waiting = still_waiting
        self.rigid_waiting = sum(self.runs[i].rigid for i in still_waiting)

    def _capacity(self, at: float) -> Capacity:
        """The slots, and with a capacity, when held slots free up and the rigid demand of
        every hour ended by ``at``."""
        if self.capacity is None or self.rigid_hourly is None:
            return Capacity(self.capacity, self.used)
        held = [(i, at, end) for i, end in self.running.items()]
        held += [(i, at, at + self.runs[i].remaining) for i in self.waiting]
        runs = [self.runs[i] for i, _, _ in held]
        holds = Holds(
            np.asarray([start for _, start, _ in held], dtype=np.float64),
            np.asarray([end for _, _, end in held], dtype=np.float64),
            np.asarray([run.job.gpus for run in runs], dtype=np.int64),
            np.asarray([run.rigid for run in runs], dtype=np.bool_),
        )
        first_hour, hourly = self.rigid_hourly
        ended = math.floor((self.batch.origin.timestamp() + at) / HOUR + EPS) - first_hour
        demand = RigidDemand(first_hour, hourly[: max(ended, 0)])
        return Capacity(self.capacity, self.used, holds, demand)


HOUR = 3600.0


def _rigid_hourly(batch: JobBatch) -> tuple[int, FloatArray]:
    """Mean GPUs asked for by rigid jobs in each UTC hour (``rigid_demand.rigid_hourly``):
    ``(first epoch hour, values)``."""
    epoch, rigid = batch.origin.timestamp(), ~batch.flexible
    first_submit = float(batch.submit.min()) if len(batch) else 0.0  # before it: not observed
    submit = epoch + batch.submit[rigid]
    demand = rigid_hourly(submit, batch.duration[rigid], batch.gpus[rigid], epoch + first_submit)
    return demand.first_hour, demand.hourly
