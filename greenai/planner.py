"""Re-planning many queued jobs over one forecast, fast enough to run every tick.

``window``: each job starts at the earliest start in ``[now, deadline - duration]`` whose run
has the lowest mean intensity (exactly what ``Grid.best_start`` finds for one job). Jobs of the
same duration share one pass over the candidate starts: for a fixed ``lo`` the candidates of a
job are the shared candidates up to its own ``hi`` plus ``hi`` itself, so a prefix minimum gives
every job's answer without redoing the grid work (10,000 jobs in well under a second).

``threshold``: the earliest start whose step is at or below the job's threshold; when no step
is, the best window (a job never waits past the point where it can still meet its deadline).

Pure: no I/O, no clock; the caller passes ``now``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from greenai.domain import Action, Decision, Forecast, provider_of
from greenai.jobs import JobRecord
from greenai.policies.windows import FloatArray, Grid

POLICIES = ("window", "threshold")


@dataclass(frozen=True, slots=True)
class _Context:
    """What every decision of one pass shares."""

    now: datetime
    forecast: Forecast | None
    intensity_now: float | None = None
    forecast_min: float | None = None


def plan_jobs(
    jobs: Sequence[JobRecord],
    forecast: Forecast | None,
    now: datetime,
    policy: str = "window",
    threshold: float | None = None,
) -> list[Decision]:
    """One decision per job (START when its planned start is now, else DEFER)."""
    if forecast is None or forecast.static or not forecast.covers(now):
        why = _no_choice_reason(forecast, now)
        blind = _Context(now, forecast)
        return [_decision(job, blind, now, None, job.policy or policy, why, None) for job in jobs]
    view = forecast.since(now)
    grid = Grid(view.values, view.step.total_seconds())
    lo = (now - view.start).total_seconds()
    context = _Context(now, view, view.values[0], min(view.values))
    starts = _window_starts(jobs, grid, view, lo)
    decisions = []
    for job in jobs:
        job_policy = job.policy or policy
        job_threshold = job.threshold if job.threshold is not None else threshold
        start, mean, why = starts[job.id]
        if job_policy == "threshold" and job_threshold is not None:
            start, mean, why = _threshold_start(job, grid, view, lo, job_threshold) or (
                start,
                mean,
                why,
            )
        at = view.start + timedelta(seconds=start)
        decisions.append(_decision(job, context, at, mean, job_policy, why, job_threshold))
    return decisions


def _no_choice_reason(forecast: Forecast | None, now: datetime) -> str:
    if forecast is None:
        return "no intensity forecast available: starting as soon as a slot is free"
    if forecast.static:
        return f"{forecast.source} is a flat annual average: no better time to wait for"
    return f"forecast {forecast.source} does not cover {now.isoformat()}: starting now"


def _window_starts(
    jobs: Sequence[JobRecord], grid: Grid, view: Forecast, lo: float
) -> dict[str, tuple[float, float | None, str]]:
    """Best window ``(start, mean, why)`` for every job (start in seconds from the grid start),
    grouped by duration."""
    by_duration: dict[float, list[tuple[str, float]]] = defaultdict(list)
    result: dict[str, tuple[float, float | None, str]] = {}
    for job in jobs:
        duration = job.duration.total_seconds()
        latest = (job.latest_start - view.start).total_seconds()
        hi = min(latest, grid.span - duration)
        if latest <= lo:
            result[job.id] = (lo, None, "past its latest start: starting now")
        elif hi <= lo:
            result[job.id] = (lo, None, "run longer than the forecast ahead: starting now")
        else:
            by_duration[duration].append((job.id, hi))
    for duration, group in by_duration.items():
        his = np.asarray([hi for _, hi in group], dtype=np.float64)
        chosen = best_starts(grid, lo, his, duration)
        for (job_id, _), (start, mean) in zip(group, chosen, strict=True):
            result[job_id] = (start, mean, "lowest-intensity window before the deadline")
    return result


def best_starts(
    grid: Grid, lo: float, his: FloatArray, duration: float
) -> list[tuple[float, float]]:
    """``[grid.best_start(lo, hi, duration) for hi in his]``, sharing the work."""
    candidates = grid.candidate_starts(lo, float(his.max()), duration)
    means = grid.mean(candidates, duration)
    prefix_min = np.minimum.accumulate(means)
    counts = np.searchsorted(candidates, his, side="right")
    hi_means = grid.mean(his, duration)
    best = np.minimum(prefix_min[counts - 1], hi_means)
    limits = best + 1e-9 * np.maximum(1.0, np.abs(best))
    starts = []
    rows = zip(counts.tolist(), limits.tolist(), his.tolist(), hi_means.tolist(), strict=True)
    for count, limit, hi, hi_mean in rows:
        good = np.flatnonzero(means[:count] <= limit)
        if good.size:
            starts.append((float(candidates[good[0]]), float(means[good[0]])))
        else:
            starts.append((hi, hi_mean))
    return starts


def _threshold_start(
    job: JobRecord, grid: Grid, view: Forecast, lo: float, threshold: float
) -> tuple[float, float | None, str] | None:
    """The earliest start at or below ``threshold`` that still meets the deadline."""
    hi = (job.latest_start - view.start).total_seconds()
    if hi < lo:
        return None
    first = int(lo // grid.step)
    last = min(int(hi // grid.step), grid.values.size - 1)
    clean = np.flatnonzero(grid.values[first : last + 1] <= threshold)
    if not clean.size:
        return None
    start = max(lo, (first + int(clean[0])) * grid.step)
    duration = min(job.duration.total_seconds(), grid.span - start)
    mean = float(grid.mean(start, duration)) if duration > 0 else None
    return start, mean, f"first step at or below threshold {threshold:g}"


def _decision(
    job: JobRecord,
    context: _Context,
    at: datetime,
    expected: float | None,
    policy: str,
    why: str,
    threshold: float | None,
) -> Decision:
    now, forecast = context.now, context.forecast
    return Decision(
        at=now,
        job_id=job.id,
        policy=policy,
        action=Action.START if at <= now else Action.DEFER,
        reason=why,
        intensity=context.intensity_now,
        threshold=threshold,
        forecast_min=context.forecast_min,
        planned_start=max(at, now),
        deadline=job.deadline,
        provider=provider_of(forecast.source) if forecast else None,
        region=forecast.region if forecast else None,
        signal=forecast.signal if forecast else None,
        fallback=forecast.fallback if forecast else None,
        warnings=forecast.warnings if forecast else (),
        forecast_intensity=expected,
    )
