"""``threshold``: start as soon as the current intensity is at or below a threshold, or when
the job's slack is spent. It needs no forecast to decide (the forecast only says when a clean
period is expected), so it is the policy to fall back on when forecasts are missing or
distrusted.

A job without a threshold of its own uses the view's ``beyond`` value (the simulator passes the
trailing week's mean there), so "threshold" without a number still means "below typical".
"""

from __future__ import annotations

import numpy as np

from greenai.core.time import format_time
from greenai.policies.base import BatchPlan, Capacity, JobBatch, Policy
from greenai.policies.registry import register
from greenai.policies.view import EPS, ForecastView
from greenai.policies.windows import FloatArray


@register
class Threshold(Policy):
    name = "threshold"
    summary = (
        "start once the intensity is at or below the job's threshold (default: the typical "
        "value), or when its slack is spent"
    )
    rank = 1

    def plan(self, jobs: JobBatch, view: ForecastView, now: float, capacity: Capacity) -> BatchPlan:
        limits = np.where(np.isnan(jobs.threshold), view.beyond, jobs.threshold)
        current = view.value_at(now)
        latest = jobs.latest_start
        clean = current <= limits
        waiting = ~clean & (now < latest - EPS)
        starts = np.full(len(jobs), now)
        expected = np.where(waiting, np.nan, current)
        first, first_value = _first_at_or_below(view, now, limits, latest)
        starts[waiting] = np.where(np.isnan(first), latest, first)[waiting]
        said: dict[tuple[float, bool, bool, float, float], str] = {}
        reasons = []
        rows = zip(limits, clean, waiting, first, first_value, strict=True)
        for row in ((float(a), bool(b), bool(c), float(d), float(e)) for a, b, c, d, e in rows):
            reason = said.get(row)
            if reason is None:
                reason = said[row] = _reason(jobs, current, *row)
            reasons.append(reason)
        return BatchPlan(starts, expected, reasons)


def _first_at_or_below(
    view: ForecastView, now: float, limits: FloatArray, latest: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """For each job, the start and value of the first step after the one holding ``now``
    whose forecast is at or below its limit and that starts by its latest start (NaN: none)."""
    starts = view.origin + np.arange(view.values.size) * view.step
    ahead = starts > now + EPS
    first = np.full(limits.size, np.nan)
    value = np.full(limits.size, np.nan)
    for limit in np.unique(limits).tolist():
        hits = np.flatnonzero(ahead & (view.values <= limit))
        if hits.size == 0:
            continue
        members = limits == limit
        usable = members & (starts[hits[0]] <= latest)
        first[usable], value[usable] = starts[hits[0]], view.values[hits[0]]
        late = members & ~usable  # the first hit is past their latest start: look no further
        first[late] = np.nan
    return first, value


def _reason(
    jobs: JobBatch,
    current: float,
    limit: float,
    clean: bool,
    waiting: bool,
    first: float,
    value: float,
) -> str:
    if clean:
        return f"intensity {current:g} <= threshold {limit:g}"
    if not waiting:
        return f"intensity {current:g} > threshold {limit:g}, but the slack is spent"
    if np.isnan(first):
        outlook = "no period at or below it is expected before the latest start"
    else:
        outlook = f"first period expected at or below: {format_time(jobs.at(first))} ({value:g})"
    return f"intensity {current:g} > threshold {limit:g}; {outlook}"
