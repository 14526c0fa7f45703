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

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from greenai.policies.view import EPS, ForecastView, JobTimes, StartDecision
from greenai.policies.windows import FloatArray, Grid


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
    """``[plan_window(job, view, now) for job in jobs]``, fast enough for a daemon's queue."""
    if view.uncertain or not jobs:
        return [plan_window(job, view, now) for job in jobs]
    durations = np.asarray([job.duration for job in jobs], dtype=np.float64)
    deadlines = np.asarray([job.deadline for job in jobs], dtype=np.float64)
    starts, means, kinds = plan_window_arrays(durations, deadlines, view, now)
    rows = zip(starts.tolist(), means.tolist(), kinds.tolist(), strict=True)
    return [
        StartDecision(start, None if kind == SPENT else mean, window_reason(kind, mean))
        for start, mean, kind in rows
    ]


SPENT, NOW, LATER = 0, 1, 2  # the kinds of window decision (``window_reason``)


def plan_window_arrays(
    durations: FloatArray, deadlines: FloatArray, view: ForecastView, now: float
) -> tuple[FloatArray, FloatArray, NDArray[np.int64]]:
    """``plan_window`` for many jobs given as arrays: ``(starts, means, kinds)``, where a
    start is ``now`` unless the kind is ``LATER`` and a mean is NaN where the slack is spent.

    With exact values, jobs of one duration share a single pass over the candidate starts
    (``Grid.best_starts_arrays``); with uncertain values each job takes the one-job search.
    """
    latest = deadlines - durations
    spent = now >= latest - EPS
    offsets = np.zeros(durations.size)
    means = np.full(durations.size, np.nan)
    live = np.flatnonzero(~spent)
    lo = now - view.origin
    if view.uncertain:
        for i in live.tolist():
            grid = view.grid_until(float(deadlines[i]))
            hi, duration = float(latest[i]) - view.origin, float(durations[i])
            offsets[i], means[i] = best_expected_start(view, grid, lo, hi, duration)
    elif live.size:
        grid = view.grid_until(float(deadlines[live].max()))
        for duration in np.unique(durations[live]).tolist():
            members = live[durations[live] == duration]
            his = latest[members] - view.origin
            offsets[members], means[members] = grid.best_starts_arrays(lo, his, duration)
    starts = view.origin + offsets
    later = starts > now + EPS
    kinds = np.where(spent, SPENT, np.where(later, LATER, NOW))
    return np.where(later & ~spent, starts, now), means, kinds


def window_reason(kind: int, mean: float) -> str:
    """Why a window decision of ``kind`` (``plan_window_arrays``) was made."""
    if kind == SPENT:
        return "slack spent: latest start reached"
    if kind == NOW:
        return f"best window starts now (mean {mean:.1f})"
    return f"a cleaner window starts later (mean {mean:.1f})"


def _window_decision(start: float, mean: float, now: float) -> StartDecision:
    kind = NOW if start <= now + EPS else LATER
    return StartDecision(now if kind == NOW else start, mean, window_reason(kind, mean))


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
