"""``interruptible``: an interruptible job runs in the cheapest slots before its deadline,
paused and resumed at step boundaries and re-planned at each one as the forecast moves; a job
that cannot be interrupted is planned as ``window`` plans it.

Each decision plans all remaining work into ``[now, deadline)`` (slots past the visible
forecast count at the view's ``beyond`` value) and runs only the part of that plan that falls in
the current step. The plan always fits before the deadline, and whatever it leaves for later
still fits after this step, so following it step by step never misses the deadline.
"""

from __future__ import annotations

import numpy as np

from greenai.policies.base import BatchPlan, Capacity, JobBatch, Pieces, Policy
from greenai.policies.registry import register
from greenai.policies.view import EPS, ForecastView
from greenai.policies.window import Window


@register
class Interruptible(Policy):
    name = "interruptible"
    summary = (
        "run interruptible jobs in the cheapest steps before their deadline, paused and "
        "resumed; other jobs as window plans them"
    )
    rank = 4
    pauses = True
    needs_duration = True

    def plan(self, jobs: JobBatch, view: ForecastView, now: float, capacity: Capacity) -> BatchPlan:
        count = len(jobs)
        starts, expected = np.full(count, now), np.full(count, np.nan)
        reasons: list[str] = [""] * count
        pieces: list[Pieces | None] = [None] * count
        run_for = np.full(count, np.nan)
        whole = np.flatnonzero(~jobs.interruptible)
        if whole.size:
            planned = Window().plan(jobs.take(whole), view, now, capacity)
            starts[whole], expected[whole] = planned.starts, planned.expected
            for i, reason in zip(whole.tolist(), planned.reasons, strict=True):
                reasons[i] = reason
        for i in np.flatnonzero(jobs.interruptible).tolist():
            deadline, remaining = float(jobs.deadline[i]), float(jobs.remaining[i])
            run_for[i], ahead, reasons[i] = plan_pieces(view, now, deadline, remaining)
            pieces[i] = ahead
            if run_for[i] <= EPS and ahead:
                starts[i] = ahead[0][0]
        return BatchPlan(starts, expected, reasons, run_for, pieces)


def plan_pieces(
    view: ForecastView, now: float, deadline: float, remaining: float
) -> tuple[float, Pieces, str]:
    """``(run_for, planned pieces, reason)``: how long to run from ``now`` until the next step
    boundary, given ``remaining`` seconds of work due by ``deadline``."""
    boundary = view.next_boundary(now)
    if remaining <= EPS:
        return 0.0, (), "done"
    if deadline - now <= remaining + EPS:
        return min(boundary - now, remaining), ((now, now + remaining),), "no slack left: run"
    grid = view.grid_until(deadline)
    slots = grid.cheapest_slots(now - view.origin, deadline - view.origin, remaining)
    planned = tuple((view.origin + a, view.origin + b) for a, b in slots)
    first_start, first_end = planned[0]
    if first_start > now + EPS:
        return 0.0, planned, "paused: cheaper slots ahead"
    run_for = min(min(first_end, boundary) - now, remaining)
    return run_for, planned, "running: among the cheapest slots"
