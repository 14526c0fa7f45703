"""``window``: the lowest mean-intensity window over the job's duration, re-planned at every
step until the job starts (rolling horizon).

Re-planning is what lets a job whose slack is longer than the forecast still land near the best
window: each decision compares the visible windows with what a typical (``beyond``) intensity
would give later, and only starts now when nothing visible or likely is better. The earliest
start wins ties, so a forecast that does not change yields the same start at every re-plan.
``plan_window_once`` is the plan-at-submit variant existing tools use, kept for comparison.
"""

from __future__ import annotations

from greenai.policies.view import EPS, ForecastView, JobTimes, StartDecision


def plan_window(job: JobTimes, view: ForecastView, now: float) -> StartDecision:
    """Best start in ``[now, latest_start]`` on the visible forecast extended by ``beyond``."""
    if now >= job.latest_start - EPS:
        return StartDecision(now, None, "slack spent: latest start reached")
    grid = view.grid_until(job.deadline)
    offset, mean = grid.best_start(now - view.origin, job.latest_start - view.origin, job.duration)
    start = view.origin + offset
    if start <= now + EPS:
        return StartDecision(now, mean, f"best window starts now (mean {mean:.1f})")
    return StartDecision(start, mean, f"a cleaner window starts later (mean {mean:.1f})")


def plan_window_once(job: JobTimes, view: ForecastView, now: float) -> StartDecision:
    """Best start among the windows that end inside the visible forecast; now when none does.

    Meant to be called once, at submit: the caller commits to the answer.
    """
    hi = min(job.latest_start, view.end - job.duration)
    if hi < now + EPS:
        return StartDecision(now, None, "no whole window inside the forecast: start now")
    offset, mean = view.grid.best_start(now - view.origin, hi - view.origin, job.duration)
    return StartDecision(max(now, view.origin + offset), mean, f"planned once (mean {mean:.1f})")
