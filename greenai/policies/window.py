"""``window``: the lowest mean-intensity window over the job's duration, re-planned at every
step until the job starts (rolling horizon).

Re-planning is what lets a job whose slack is longer than the forecast still land near the best
window: each decision compares the visible windows with what a typical (``beyond``) intensity
would give later, and only starts now when nothing visible or likely is better. The earliest
start wins ties, so a forecast that does not change yields the same start at every re-plan.
``plan_window_once`` is the plan-at-submit variant existing tools use, kept for comparison.

When the view says how uncertain its values are, windows are compared on their expected actual
mean rather than on the forecast itself. Picking the lowest of many noisy forecasts picks the
one most likely to be too low (the winner's curse), so each forecast window mean ``f`` is
shrunk toward the forecast's mean ``mu`` over the job's reach, in proportion to its error
variance ``s2`` against the intensity's own recent variance ``t2`` (the empirical-Bayes
posterior mean of a value seen through noise):

    expected = mu + t2 / (t2 + s2) * (f - mu)

A window whose advantage is within the noise stops luring the job, while a clear one still
does; a window with no forecast error (``s2 = 0``) keeps its value, so an exact forecast gives
exactly the plain rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from greenai.policies.view import EPS, ForecastView, JobTimes, StartDecision
from greenai.policies.windows import Grid


def plan_window(job: JobTimes, view: ForecastView, now: float) -> StartDecision:
    """Best start in ``[now, latest_start]`` on the visible forecast extended by ``beyond``."""
    if now >= job.latest_start - EPS:
        return StartDecision(now, None, "slack spent: latest start reached")
    grid = view.grid_until(job.deadline)
    lo, hi = now - view.origin, job.latest_start - view.origin
    if view.uncertain:
        offset, mean = best_expected_start(view, grid, lo, hi, job.duration)
    else:
        offset, mean = grid.best_start(lo, hi, job.duration)
    return _window_decision(view.origin + offset, mean, now)


def plan_window_many(
    jobs: Sequence[JobTimes], view: ForecastView, now: float
) -> list[StartDecision]:
    """``[plan_window(job, view, now) for job in jobs]``, fast enough for a daemon's queue.

    With exact values, jobs of one duration share a single pass over the candidate starts
    (``Grid.best_starts``); with uncertain values each job takes the one-job path.
    """
    if view.uncertain or not jobs:
        return [plan_window(job, view, now) for job in jobs]
    grid = view.grid_until(max(job.deadline for job in jobs))
    lo = now - view.origin
    decisions: dict[int, StartDecision] = {}
    by_duration: dict[float, list[int]] = defaultdict(list)
    for index, job in enumerate(jobs):
        if now >= job.latest_start - EPS:
            decisions[index] = StartDecision(now, None, "slack spent: latest start reached")
        else:
            by_duration[job.duration].append(index)
    for duration, members in by_duration.items():
        his = np.asarray([jobs[i].latest_start - view.origin for i in members])
        for index, (offset, mean) in zip(members, grid.best_starts(lo, his, duration), strict=True):
            decisions[index] = _window_decision(view.origin + offset, mean, now)
    return [decisions[index] for index in range(len(jobs))]


def _window_decision(start: float, mean: float, now: float) -> StartDecision:
    if start <= now + EPS:
        return StartDecision(now, mean, f"best window starts now (mean {mean:.1f})")
    return StartDecision(start, mean, f"a cleaner window starts later (mean {mean:.1f})")


def best_expected_start(
    view: ForecastView, grid: Grid, lo: float, hi: float, duration: float
) -> tuple[float, float]:
    """The earliest start in ``[lo, hi]`` (grid seconds) with the lowest expected mean, each
    window's forecast mean shrunk toward the mean over ``[lo, hi + duration)`` by its error.

    A window's error spread is the mean of its steps' spreads: the bound for errors that move
    together, as a forecast's errors at neighbouring leads do.
    """
    starts = grid.candidate_starts(lo, hi, duration)
    means = grid.mean(starts, duration)
    error_var = view.spread_until(view.origin + hi + duration).mean(starts, duration) ** 2
    prior_mean = float(grid.mean(lo, hi + duration - lo))
    prior_var = float(view.signal_sd or 0.0) ** 2
    weight = prior_var / (prior_var + np.maximum(error_var, 1e-300))
    expected = np.where(error_var > 0, prior_mean + weight * (means - prior_mean), means)
    best = float(np.min(expected))
    chosen = int(np.flatnonzero(expected <= best + 1e-9 * max(1.0, abs(best)))[0])
    return float(starts[chosen]), float(expected[chosen])


def plan_window_once(job: JobTimes, view: ForecastView, now: float) -> StartDecision:
    """Best start among the windows that end inside the visible forecast; now when none does.

    Meant to be called once, at submit: the caller commits to the answer.
    """
    hi = min(job.latest_start, view.end - job.duration)
    if hi < now + EPS:
        return StartDecision(now, None, "no whole window inside the forecast: start now")
    offset, mean = view.grid.best_start(now - view.origin, hi - view.origin, job.duration)
    return StartDecision(max(now, view.origin + offset), mean, f"planned once (mean {mean:.1f})")
