"""``interruptible``: an interruptible job runs in the cheapest slots before its deadline,
paused and resumed at step boundaries and re-planned at each one as the forecast moves.

Each decision plans all remaining work into ``[now, deadline)`` (slots past the visible
forecast count at the view's ``beyond`` value) and runs only the part of that plan that falls in
the current step. The plan always fits before the deadline, and whatever it leaves for later
still fits after this step, so following it step by step never misses the deadline.
"""

from __future__ import annotations

from greenai.policies.view import EPS, ForecastView, JobTimes, PieceDecision


def plan_pieces(job: JobTimes, view: ForecastView, now: float, remaining: float) -> PieceDecision:
    """How long to run from ``now`` until the next step boundary, given ``remaining`` work."""
    boundary = view.next_boundary(now)
    if remaining <= EPS:
        return PieceDecision(0.0, (), "done")
    if job.deadline - now <= remaining + EPS:
        run_for = min(boundary - now, remaining)
        return PieceDecision(run_for, ((now, now + remaining),), "no slack left: run")
    grid = view.grid_until(job.deadline)
    pieces = grid.cheapest_slots(now - view.origin, job.deadline - view.origin, remaining)
    planned = tuple((view.origin + a, view.origin + b) for a, b in pieces)
    first_start, first_end = planned[0]
    if first_start > now + EPS:
        return PieceDecision(0.0, planned, "paused: cheaper slots ahead")
    run_for = min(first_end, boundary) - now
    return PieceDecision(min(run_for, remaining), planned, "running: among the cheapest slots")
