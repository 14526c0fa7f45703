"""``oracle``: the offline optimum with perfect knowledge of the actual intensity.

Exact for piecewise-constant intensity: a whole job's best start is among the breakpoints
(``Grid.best_start``), and an interruptible job's best schedule is the cheapest steps
(``Grid.cheapest_slots``). It is the yardstick every other policy's savings are shared against:
it is given the actual intensity as its view, plans every job once, and ignores capacity.
"""

from __future__ import annotations

import numpy as np

from greenai.policies.base import BatchPlan, Capacity, JobBatch, Pieces, Policy
from greenai.policies.registry import register
from greenai.policies.view import ForecastView


@register
class Oracle(Policy):
    name = "oracle"
    summary = "the offline optimum, knowing the actual intensity in advance (simulate only)"
    rank = 5
    online = False
    commits = True
    capacity_bound = False

    def plan(self, jobs: JobBatch, view: ForecastView, now: float, capacity: Capacity) -> BatchPlan:
        actual, origin = view.grid, view.origin
        pieces: list[Pieces | None] = []
        for i in range(len(jobs)):
            submit, duration = float(jobs.submit[i]) - origin, float(jobs.duration[i])
            deadline = float(jobs.deadline[i]) - origin
            if jobs.interruptible[i]:
                slots = actual.cheapest_slots(submit, deadline, duration)
            else:
                start, _ = actual.best_start(submit, max(submit, deadline - duration), duration)
                slots = [(start, start + duration)]
            pieces.append(tuple((origin + a, origin + b) for a, b in slots))
        starts = np.asarray([p[0][0] if p else now for p in pieces], dtype=np.float64)
        reasons = ["the offline optimum"] * len(jobs)
        return BatchPlan(starts, np.full(len(jobs), np.nan), reasons, pieces=pieces)
