"""The virtual clock: a discrete-event loop over submits, step boundaries, starts and ends.

Decisions happen at a job's submit and at every trace step boundary after it, the moments a
daemon ticking once per step would have. A planned start that falls before the next boundary
is honoured exactly (mid-step), so the simulator loses nothing to its own granularity.

Capacity (``--capacity N`` GPU slots): a start that does not fit waits in a queue (rigid jobs
first, then in queueing order) and begins as soon as a running job frees enough slots; an
interruptible piece that does not fit is skipped for that step. Rigid jobs (``flexible=0``)
ignore the policy and start at submit. A job still unfinished when the trace ends is late.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from greenai.core.domain import JobSpec
from greenai.policies.view import EPS, JobTimes
from greenai.simulate.drivers import Driver

FINISH, STEP, DECIDE, START = 0, 1, 2, 3  # same-moment order: free slots before using them


@dataclass
class JobRun:
    """One job's progress through the simulation."""

    spec: JobSpec
    times: JobTimes
    remaining: float
    segments: list[tuple[float, float]] = field(default_factory=list)

    @property
    def rigid(self) -> bool:
        return not self.spec.flexible


class Engine:
    """Runs one policy over one workload; ``run`` returns each job's segments."""

    def __init__(
        self, jobs: list[JobTimes], specs: list[JobSpec], driver: Driver, step_s: float,
        span_s: float, capacity: int | None = None,
    ) -> None:  # fmt: skip
        self.runs = [JobRun(s, t, t.duration) for s, t in zip(specs, jobs, strict=True)]
        self.driver = driver
        self.step = step_s
        self.span = span_s
        self.capacity = capacity if driver.uses_capacity else None
        self.used = 0
        self.waiting: list[int] = []
        self._events: list[tuple[float, int, int, int, int]] = []
        self._seq = 0

    def run(self) -> list[JobRun]:
        for index, job in enumerate(self.runs):
            mode = "start" if job.rigid else self.driver.mode(job.times)
            if mode == "fixed":
                job.segments = self.driver.fixed(job.times)
                job.remaining = 0.0
            else:
                self._push(job.times.submit, STEP if mode == "step" else DECIDE, index)
        while self._events:
            at, kind, _, _, index = heapq.heappop(self._events)
            if kind == FINISH:
                self._finish(index, at)
            elif at < self.span - EPS:
                handler = {STEP: self._step, DECIDE: self._decide, START: self._start}[kind]
                handler(index, at)
        return self.runs

    def _push(self, at: float, kind: int, index: int) -> None:
        self._seq += 1
        rigid_first = 0 if self.runs[index].rigid else 1
        heapq.heappush(self._events, (at, kind, rigid_first, self._seq, index))

    def _next_boundary(self, at: float) -> float:
        return (math.floor(at / self.step + EPS) + 1) * self.step

    def _fits(self, job: JobRun) -> bool:
        return self.capacity is None or self.used + job.spec.gpus <= self.capacity

    def _decide(self, index: int, at: float) -> None:
        job = self.runs[index]
        if job.rigid:
            self._start(index, at)
            return
        planned, committed = self.driver.plan_start(job.times, at)
        boundary = self._next_boundary(at)
        if committed or planned < boundary - EPS:
            self._push(max(planned, at), START, index)
        else:
            self._push(boundary, DECIDE, index)

    def _start(self, index: int, at: float) -> None:
        job = self.runs[index]
        if not self._fits(job):
            self.waiting.append(index)
            return
        self._run_piece(job, index, at, job.remaining)

    def _run_piece(self, job: JobRun, index: int, at: float, length: float) -> None:
        self.used += job.spec.gpus
        job.segments.append((at, at + length))
        job.remaining -= length
        self._push(at + length, FINISH, index)

    def _step(self, index: int, at: float) -> None:
        job = self.runs[index]
        run_for = self.driver.run_for(job.times, at, job.remaining)
        if run_for > EPS and self._fits(job):
            self._run_piece(job, index, at, run_for)
        if job.remaining > EPS:
            self._push(self._next_boundary(at), STEP, index)

    def _finish(self, index: int, at: float) -> None:
        self.used -= self.runs[index].spec.gpus
        still_waiting: list[int] = []
        for waiting in sorted(self.waiting, key=lambda i: not self.runs[i].rigid):
            if at < self.span - EPS and self._fits(self.runs[waiting]):
                self._start(waiting, at)
            else:
                still_waiting.append(waiting)
        self.waiting = still_waiting
