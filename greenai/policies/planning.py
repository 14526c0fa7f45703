"""From a forecast to decisions: the one place a policy's plan is written up as ``Decision``s.

`greenai run` decides its one job at every check and the daemon its whole queue at every tick,
both through ``decide``: it puts the forecast visible now on the jobs' time axis, asks the
policy, and writes each answer up with what a reader of the decision log needs: the intensity
now, the lowest forecast value before the job's deadline, which source answered with which
signal, and the mean intensity expected over the planned run. With no usable forecast (none,
a flat annual average, or one that does not cover now) there is no better time to wait for:
every job starts now and the decision says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import overload

import numpy as np

from greenai.core.domain import Action, Decision, Forecast, provider_of
from greenai.policies.base import UNLIMITED, BatchPlan, Capacity, JobBatch, Policy
from greenai.policies.view import EPS, ForecastView
from greenai.policies.windows import FloatArray


def axis_origin(forecast: Forecast | None, now: datetime) -> datetime:
    """A good 0 for the time axis of a decision at ``now``: the start of the forecast step
    that holds now (so step boundaries are whole seconds), else now itself."""
    if forecast is not None and not forecast.static and forecast.covers(now):
        return forecast.since(now).start
    return now


def forecast_view(forecast: Forecast, now: datetime, origin: datetime) -> ForecastView:
    """What of ``forecast`` is visible at ``now``, on the axis whose 0 is ``origin``."""
    visible = forecast.since(now)
    start = (visible.start - origin).total_seconds()
    return ForecastView(start, visible.step.total_seconds(), np.asarray(visible.values))


def decide(
    policy: Policy,
    jobs: JobBatch,
    forecast: Forecast | None,
    now: datetime,
    capacity: Capacity = UNLIMITED,
) -> Decisions:
    """One decision per job of ``jobs``: start now, or defer to a planned start."""
    if forecast is None or forecast.static or not forecast.covers(now):
        return _blind(policy, jobs, forecast, now)
    view = forecast_view(forecast, now, jobs.origin)
    at = (now - jobs.origin).total_seconds()
    plan = policy.plan(jobs, view, at, capacity)
    return _write_up(policy, jobs, plan, _Context(forecast, view, now, at))


class _Context:
    """What every decision of one pass shares."""

    __slots__ = ("at", "current", "forecast", "now", "view")

    def __init__(self, forecast: Forecast, view: ForecastView, now: datetime, at: float) -> None:
        self.forecast, self.view, self.now, self.at = forecast, view, now, at
        self.current = view.value_at(at)


class Decisions(Sequence[Decision]):
    """The decisions of one pass, kept as columns; each ``Decision`` is built when it is read.
    A daemon re-plan of 10,000 jobs reads only the few whose plan changed or that start now,
    so it need not build 10,000 objects to discard them. The float columns stay arrays: as
    lists they cost 32 bytes a value, 10 MB over a 100,000-job queue."""

    def __init__(
        self,
        shared: Decision,
        jobs: JobBatch,
        reasons: Sequence[str],
        starting: Sequence[bool],
        planned: Sequence[datetime],
        expected: Sequence[float] | FloatArray,
        lowest: Sequence[float] | FloatArray,
    ) -> None:
        self._shared, self._jobs, self._reasons = shared, jobs, reasons
        self.starting = list(starting)  # whether each job starts now
        self.planned_starts = list(planned)
        self._expected, self._lowest = expected, lowest
        self._thresholds = jobs.threshold

    def __len__(self) -> int:
        return len(self.starting)

    @overload
    def __getitem__(self, index: int) -> Decision: ...

    @overload
    def __getitem__(self, index: slice) -> list[Decision]: ...

    def __getitem__(self, index: int | slice) -> Decision | list[Decision]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        shared = self._shared
        return Decision(
            at=shared.at,
            job_id=self._jobs.ids[index],
            policy=shared.policy,
            action=Action.START if self.starting[index] else Action.DEFER,
            reason=self._reasons[index],
            intensity=shared.intensity,
            threshold=_known(float(self._thresholds[index])),
            forecast_min=_known(float(self._lowest[index])),
            planned_start=self.planned_starts[index],
            deadline=self._jobs.deadline_at[index],
            provider=shared.provider,
            region=shared.region,
            signal=shared.signal,
            fallback=shared.fallback,
            warnings=shared.warnings,
            forecast_intensity=_known(float(self._expected[index])),
        )


def _write_up(policy: Policy, jobs: JobBatch, plan: BatchPlan, context: _Context) -> Decisions:
    now, forecast = context.now, context.forecast
    starting = plan.starts_now(context.at)
    planned = np.where(starting, context.at, np.maximum(plan.starts, context.at))
    times: dict[float, datetime] = {}
    starts = []
    for start, now_ in zip(planned.tolist(), starting.tolist(), strict=True):
        when = times.get(start)
        if when is None:
            when = times[start] = now if now_ else max(jobs.at(start), now)
        starts.append(when)
    shared = Decision(
        now, "", policy.name, Action.DEFER, "", intensity=context.current,
        provider=provider_of(forecast.source), region=forecast.region, signal=forecast.signal,
        fallback=forecast.fallback, warnings=forecast.warnings,
    )  # fmt: skip
    expected = _expected(plan.expected, planned, jobs.duration, context.view)
    lowest = _lowest_ahead(context.view, context.at, jobs.deadline)
    return Decisions(shared, jobs, plan.reasons, starting.tolist(), starts, expected, lowest)


def _expected(
    said: FloatArray, starts: FloatArray, durations: FloatArray, view: ForecastView
) -> FloatArray:
    """What the policy expects over each planned run; where it did not say, the forecast's
    mean over ``[start, start + duration)`` (its value at the start for a job of no length)."""
    missing = np.isnan(said)
    if not missing.any():
        return said
    lengths = durations[missing]
    begins = starts[missing] - view.origin
    grid = view.grid_until(view.origin + float((begins + lengths).max()))
    filled = said.copy()
    long = lengths > EPS
    means = np.asarray(grid.mean(begins, 0.0), dtype=np.float64).reshape(begins.shape).copy()
    if long.any():
        means[long] = grid.integral(begins[long], begins[long] + lengths[long]) / lengths[long]
    filled[missing] = means
    return filled


def _lowest_ahead(view: ForecastView, at: float, deadlines: FloatArray) -> FloatArray:
    """The lowest forecast value of the steps between now and each deadline (NaN: none)."""
    steps = np.ceil((deadlines - view.origin) / view.step - 1e-9).astype(np.int64)
    first = int(np.clip((at - view.origin) // view.step, 0, view.values.size - 1))
    running_min = np.minimum.accumulate(view.values[first:])
    count = np.clip(steps - first, 0, running_min.size)
    return np.where(count > 0, running_min[np.maximum(count - 1, 0)], np.nan)


def _blind(policy: Policy, jobs: JobBatch, forecast: Forecast | None, now: datetime) -> Decisions:
    """Everyone starts now: there is nothing to plan with, or nothing better to wait for."""
    value = float("nan")
    if forecast is None:
        reason = "no intensity forecast available: starting now, blind"
    elif forecast.static:
        reason = f"{forecast.source} is a flat annual average: no better time to wait for"
        value = forecast.values[0]
    else:
        reason = f"forecast {forecast.source} does not cover {now.isoformat()}: starting now"
    shared = Decision(
        now, "", policy.name, Action.START, reason, intensity=_known(value),
        provider=provider_of(forecast.source) if forecast else None,
        region=forecast.region if forecast else None,
        signal=forecast.signal if forecast else None,
        fallback=forecast.fallback if forecast else None,
        warnings=forecast.warnings if forecast else (),
    )  # fmt: skip
    count = len(jobs)
    values = [value] * count
    return Decisions(shared, jobs, [reason] * count, [True] * count, [now] * count, values, values)


def _known(value: float) -> float | None:
    return None if value != value else value  # NaN -> unknown
