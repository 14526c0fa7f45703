"""Decisions for one job waiting to start (`greenai run`): threshold+deferral and best window.

Pure functions: the caller passes ``now`` and the forecast that was visible then, and gets a
``Decision``. Called again at every check, so a re-issued forecast re-plans the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from greenai.core.domain import Action, Decision, Forecast, provider_of
from greenai.core.errors import ConfigError
from greenai.core.time import format_time
from greenai.policies.view import ForecastView, JobTimes
from greenai.policies.window import plan_window

POLICIES = ("threshold", "window")


@dataclass(frozen=True, slots=True)
class Request:
    """What the user asked of one job: how long it may wait and what counts as clean."""

    job_id: str
    submitted_at: datetime
    policy: str = "threshold"
    threshold: float | None = None
    defer_budget: timedelta = timedelta(hours=1)
    check_interval: timedelta = timedelta(minutes=5)
    duration: timedelta | None = None
    deadline: datetime | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(
                f"policy: unknown {self.policy!r} (choose from {', '.join(POLICIES)})"
            )
        if self.policy == "threshold" and self.threshold is None:
            raise ConfigError("threshold: the threshold policy needs --threshold (gCO2/kWh)")
        if self.policy == "window" and self.duration is None:
            raise ConfigError("duration: the window policy needs --duration (e.g. 2h)")
        if self.duration is not None and self.duration <= timedelta(0):
            raise ConfigError("duration: must be positive")
        if self.check_interval <= timedelta(0):
            raise ConfigError("check_interval: must be positive")

    @property
    def latest_start(self) -> datetime:
        """The last moment the job may start: the deferral budget, or deadline - duration."""
        if self.deadline is not None:
            return self.deadline - (self.duration or timedelta(0))
        return self.submitted_at + self.defer_budget

    @property
    def effective_deadline(self) -> datetime:
        return self.deadline or self.latest_start + (self.duration or timedelta(0))


def decide(request: Request, forecast: Forecast | None, now: datetime) -> Decision:
    """The decision for ``request`` at ``now`` given what the sources said (``None``: nothing)."""
    if forecast is None:
        return _start(request, now, None, "no intensity source answered: running now, blind")
    if forecast.static:
        reason = (
            f"only a static annual average ({forecast.source}) is available: "
            "no better time to wait for, running now"
        )
        return _start(request, now, forecast, reason, _current(forecast, now))
    if request.policy == "window":
        return _decide_window(request, forecast, now)
    return _decide_threshold(request, forecast, now)


def _decide_threshold(request: Request, forecast: Forecast, now: datetime) -> Decision:
    assert request.threshold is not None
    current = _current(forecast, now)
    threshold = request.threshold
    remaining = request.latest_start - now
    if current <= threshold:
        reason = f"intensity {current:g} <= threshold {threshold:g}: running now"
        return _start(request, now, forecast, reason, current)
    if remaining <= timedelta(0):
        budget = _seconds(request.latest_start - request.submitted_at)
        reason = (
            f"intensity {current:g} > threshold {threshold:g}, but the deferral budget of "
            f"{budget} s is spent: running now"
        )
        return _start(request, now, forecast, reason, current)
    expected = _first_at_or_below(forecast, now, request.latest_start, threshold)
    planned = expected[0] if expected else request.latest_start
    wait = next_check(request, now, planned)
    if expected is None:
        outlook = "no period at or below the threshold is expected within the budget"
    else:
        outlook = f"first period expected at or below: {format_time(expected[0])} ({expected[1]:g})"
    reason = (
        f"intensity {current:g} > threshold {threshold:g}; next check in {_seconds(wait)} s; "
        f"{outlook}"
    )
    return _decision(
        request,
        now,
        forecast,
        Action.DEFER,
        reason,
        intensity=current,
        planned_start=planned,
    )


def _decide_window(request: Request, forecast: Forecast, now: datetime) -> Decision:
    assert request.duration is not None
    current = _current(forecast, now)
    if now >= request.latest_start:
        reason = "latest start reached: running now to meet the deadline"
        return _start(request, now, forecast, reason, current)
    window = best_window_in(forecast, request.duration, now, request.latest_start)
    if window.start <= now:
        reason = (
            f"now is the best window: mean {window.mean:.1f} expected over "
            f"{_seconds(request.duration)} s"
        )
        return _start(request, now, forecast, reason, current, window.mean)
    wait = next_check(request, now, window.start)
    reason = (
        f"best window starts {format_time(window.start)} (mean {window.mean:.1f} vs "
        f"{window.now_mean:.1f} now); next check in {_seconds(wait)} s"
    )
    return _decision(
        request,
        now,
        forecast,
        Action.DEFER,
        reason,
        intensity=current,
        planned_start=window.start,
        forecast_intensity=window.mean,
    )


def next_check(request: Request, now: datetime, planned_start: datetime | None) -> timedelta:
    """How long a deferred job waits before it is decided again: the check interval, cut short
    by the planned start and the latest start, and never under a second."""
    wait = min(request.check_interval, request.latest_start - now)
    if planned_start is not None and planned_start > now:
        wait = min(wait, planned_start - now)
    return max(wait, timedelta(seconds=1))


@dataclass(frozen=True, slots=True)
class Window:
    """The best start found, with its mean expected intensity and that of starting now."""

    start: datetime
    mean: float
    now_mean: float


def best_window_in(
    forecast: Forecast, duration: timedelta, earliest: datetime, latest_start: datetime
) -> Window:
    """The earliest start in ``[earliest, latest_start]`` with the lowest mean forecast
    intensity over ``duration``: the fleet ``window`` policy (``plan_window``) on this forecast,
    so `greenai run`, the daemon and the simulator choose windows with the same code.

    Beyond the forecast's end a typical value (the forecast's mean) is assumed, so a job whose
    deadline outlasts the forecast still waits for a clearly cleaner visible window, and at every
    re-check the horizon moves on.
    """
    origin = forecast.start
    view = ForecastView(0.0, forecast.step.total_seconds(), np.asarray(forecast.values))
    length = duration.total_seconds()
    lo = max(0.0, (earliest - origin).total_seconds())
    deadline = max((latest_start - origin).total_seconds(), lo) + length
    planned = plan_window(JobTimes("", lo, length, deadline), view, lo)
    now_mean = float(view.grid_until(lo + length).mean(lo, length))
    mean = now_mean if planned.expected is None else planned.expected
    return Window(origin + timedelta(seconds=max(planned.start, lo)), mean, now_mean)


def _current(forecast: Forecast, now: datetime) -> float:
    """The value of the step holding now (the first value when the forecast starts later)."""
    return forecast.value_at(now) if forecast.covers(now) else forecast.values[0]


def _first_at_or_below(
    forecast: Forecast, now: datetime, until: datetime, threshold: float
) -> tuple[datetime, float] | None:
    for point in forecast.points:
        period_end = point.start + forecast.step
        if period_end <= now or point.start > until:
            continue
        if point.value <= threshold:
            return max(point.start, now), point.value
    return None


def _start(
    request: Request,
    now: datetime,
    forecast: Forecast | None,
    reason: str,
    intensity: float | None = None,
    forecast_intensity: float | None = None,
) -> Decision:
    if forecast_intensity is None and forecast is not None and request.duration is not None:
        forecast_intensity = _window_mean_from(forecast, now, request.duration)
    elif forecast_intensity is None:
        forecast_intensity = intensity
    return _decision(
        request,
        now,
        forecast,
        Action.START,
        reason,
        intensity=intensity,
        planned_start=now,
        forecast_intensity=forecast_intensity,
    )


def _window_mean_from(forecast: Forecast, start: datetime, duration: timedelta) -> float:
    view = ForecastView(0.0, forecast.step.total_seconds(), np.asarray(forecast.values))
    offset = max(0.0, (start - forecast.start).total_seconds())
    length = duration.total_seconds()
    return float(view.grid_until(offset + length).mean(offset, length))


def _decision(
    request: Request,
    now: datetime,
    forecast: Forecast | None,
    action: Action,
    reason: str,
    *,
    intensity: float | None,
    planned_start: datetime | None,
    forecast_intensity: float | None = None,
) -> Decision:
    return Decision(
        at=now,
        job_id=request.job_id,
        policy=request.policy,
        action=action,
        reason=reason,
        intensity=intensity,
        threshold=request.threshold,
        forecast_min=_forecast_min(forecast, now, request.effective_deadline),
        planned_start=planned_start,
        deadline=request.effective_deadline,
        provider=provider_of(forecast.source) if forecast else None,
        region=forecast.region if forecast else None,
        signal=forecast.signal if forecast else None,
        fallback=forecast.fallback if forecast else None,
        warnings=forecast.warnings if forecast else (),
        forecast_intensity=forecast_intensity if forecast_intensity is not None else intensity,
    )


def _forecast_min(forecast: Forecast | None, now: datetime, until: datetime) -> float | None:
    if forecast is None:
        return None
    ahead = [p.value for p in forecast.points if p.start + forecast.step > now and p.start < until]
    return min(ahead) if ahead else None


def _seconds(delta: timedelta) -> int:
    return round(delta.total_seconds())
