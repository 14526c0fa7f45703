"""``window``: the lowest mean-intensity window over the job's duration, re-planned at every
step until the job starts (rolling horizon).

Re-planning is what lets a job whose slack is longer than the forecast still land near the best
window: each decision compares the visible windows with what a typical (``beyond``) intensity
would give later, and only starts now when nothing visible or likely is better. The earliest
start wins ties, so a forecast that does not change yields the same start at every re-plan.
``window-once`` is the plan-at-submit variant existing tools use, kept for comparison.

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

import numpy as np
from numpy.typing import NDArray

from greenai.core.time import format_time
from greenai.policies.base import BatchPlan, Capacity, JobBatch, Policy
from greenai.policies.registry import register
from greenai.policies.view import EPS, ForecastView
from greenai.policies.windows import FloatArray, Grid

SPENT, NOW, LATER = 0, 1, 2  # the kinds of window decision
SPENT_REASON = "slack spent: latest start reached"
REASON_CHUNK = 4096  # decisions written up at a time: the columns as Python lists stay small


@register
class Window(Policy):
    name = "window"
    summary = (
        "start at the lowest mean forecast over the job's duration that still ends by its "
        "deadline; re-planned at every step until the job starts"
    )
    rank = 2
    needs_duration = True

    def plan(self, jobs: JobBatch, view: ForecastView, now: float, capacity: Capacity) -> BatchPlan:
        planned = plan_window_arrays(jobs.duration, jobs.deadline, view, now)
        return BatchPlan(planned[0], planned[1], window_reasons(jobs, view, now, planned))


@register
class WindowOnce(Policy):
    name = "window-once"
    summary = (
        "the best window among those inside the forecast visible at submit, planned once and "
        "kept (what most carbon-aware tools do; for comparison)"
    )
    rank = 3
    commits = True
    needs_duration = True

    def plan(self, jobs: JobBatch, view: ForecastView, now: float, capacity: Capacity) -> BatchPlan:
        count = len(jobs)
        starts, means = np.full(count, now), np.full(count, np.nan)
        reasons = ["no whole window inside the forecast: start now"] * count
        his = np.minimum(jobs.latest_start, view.end - jobs.duration)
        for i in np.flatnonzero(his >= now + EPS).tolist():
            lo, hi = now - view.origin, float(his[i]) - view.origin
            offset, mean = view.grid.best_start(lo, hi, float(jobs.duration[i]))
            starts[i], means[i] = max(now, view.origin + offset), mean
            reasons[i] = f"planned once (mean {mean:.1f})"
        return BatchPlan(starts, means, reasons)


def window_reasons(
    jobs: JobBatch,
    view: ForecastView,
    now: float,
    plan: tuple[FloatArray, FloatArray, NDArray[np.int64]],
) -> list[str]:
    """Why each window decision of ``plan`` (``plan_window_arrays``'s answer) was made; a
    later window is compared with starting now. Texts are made once per distinct window."""
    starts, means, kinds = plan
    later = np.flatnonzero(kinds == LATER)
    now_means = np.full(len(jobs), np.nan)
    if later.size:
        durations = jobs.duration[later]
        grid = view.grid_until(now + float(durations.max()))
        now_means[later] = grid.integral(now - view.origin, now - view.origin + durations)
        now_means[later] /= durations
    said: dict[tuple[int, float, float, float], str] = {}
    reasons = []
    for first in range(0, len(jobs), REASON_CHUNK):  # four whole columns as lists: +20 MB
        part = slice(first, first + REASON_CHUNK)
        columns = (kinds[part], starts[part], means[part], now_means[part])
        for row in zip(*(column.tolist() for column in columns), strict=True):
            key = row if row[0] == LATER else _unsaid(row)
            reason = said.get(key)
            if reason is None:
                reason = said[key] = _window_reason(jobs, *row)
            reasons.append(reason)
    return reasons


def _unsaid(row: tuple[int, float, float, float]) -> tuple[int, float, float, float]:
    """A decision to start now or of spent slack, keyed by what its reason says: the mean
    (started now) or nothing. Its other values are NaN, and NaN keys never match: every such
    job made a text of its own (20,000 of them in a 100,000-job re-plan)."""
    kind, _, mean, _ = row
    return (kind, 0.0, mean if kind == NOW else 0.0, 0.0)


def _window_reason(jobs: JobBatch, kind: int, start: float, mean: float, now_mean: float) -> str:
    if kind == SPENT:
        return SPENT_REASON
    if kind == NOW:
        return f"best window starts now (mean {mean:.1f})"
    when = format_time(jobs.at(start))
    return f"best window starts {when} (mean {mean:.1f} vs {now_mean:.1f} now)"


def plan_window_arrays(
    durations: FloatArray, deadlines: FloatArray, view: ForecastView, now: float
) -> tuple[FloatArray, FloatArray, NDArray[np.int64]]:
    """The best window of each job given as arrays: ``(starts, means, kinds)``, where a start
    is ``now`` unless the kind is ``LATER`` and a mean is NaN where the slack is spent.

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
