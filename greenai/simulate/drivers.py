"""Bind each ``--policy`` name to the pure policy functions the daemon also runs.

A driver tells the engine how a job is handled (``start``: one whole run, planned by
``plan_start``; ``step``: interruptible, asked at every step how long to run; ``fixed``: a
schedule known in advance, the oracle's) and feeds each decision the forecast visible then.
"""

from __future__ import annotations

from typing import Literal

from greenai.core.errors import ConfigError
from greenai.policies.interruptible import plan_pieces
from greenai.policies.now import plan_now
from greenai.policies.oracle import oracle_pieces, oracle_start
from greenai.policies.threshold import plan_threshold
from greenai.policies.view import JobTimes
from greenai.policies.window import plan_window, plan_window_once
from greenai.policies.windows import Grid
from greenai.simulate.forecasts import ForecastModel

Mode = Literal["start", "step", "fixed"]
POLICIES = ("now", "threshold", "window", "window-once", "interruptible", "oracle")


class Driver:
    """Base driver: whole jobs, started when ``plan_start`` says (here: at once)."""

    uses_capacity = True

    def __init__(self, name: str, forecast: ForecastModel) -> None:
        self.name = name
        self.forecast = forecast

    def mode(self, job: JobTimes) -> Mode:
        return "start"

    def plan_start(self, job: JobTimes, now: float) -> tuple[float, bool]:
        """``(planned start, committed)``; an uncommitted plan is asked again next step."""
        return plan_now(job, now).start, True

    def run_for(self, job: JobTimes, now: float, remaining: float) -> float:
        raise TypeError(f"{self.name} runs whole jobs only: run_for is for step-mode drivers")

    def fixed(self, job: JobTimes) -> list[tuple[float, float]]:
        raise TypeError(f"{self.name} has no fixed schedule: fixed is for fixed-mode drivers")


class ThresholdDriver(Driver):
    def __init__(self, name: str, forecast: ForecastModel, threshold: float | None) -> None:
        super().__init__(name, forecast)
        self.threshold = threshold

    def plan_start(self, job: JobTimes, now: float) -> tuple[float, bool]:
        view = self.forecast.view_at(now)
        return plan_threshold(job, view, now, self.threshold).start, False


class WindowDriver(Driver):
    def plan_start(self, job: JobTimes, now: float) -> tuple[float, bool]:
        return plan_window(job, self.forecast.view_at(now), now).start, False


class WindowOnceDriver(Driver):
    def plan_start(self, job: JobTimes, now: float) -> tuple[float, bool]:
        return plan_window_once(job, self.forecast.view_at(now), now).start, True


class InterruptibleDriver(WindowDriver):
    def mode(self, job: JobTimes) -> Mode:
        return "step" if job.interruptible else "start"

    def run_for(self, job: JobTimes, now: float, remaining: float) -> float:
        return plan_pieces(job, self.forecast.view_at(now), now, remaining).run_for


class OracleDriver(Driver):
    """Perfect knowledge, and no capacity limit: a lower bound for every other policy."""

    uses_capacity = False

    def __init__(self, name: str, forecast: ForecastModel) -> None:
        super().__init__(name, forecast)
        self.actual = Grid(forecast.trace.actual, forecast.trace.step_s)

    def mode(self, job: JobTimes) -> Mode:
        return "fixed"

    def fixed(self, job: JobTimes) -> list[tuple[float, float]]:
        if job.interruptible:
            return oracle_pieces(job, self.actual)
        start = oracle_start(job, self.actual)
        return [(start, start + job.duration)]


def make_driver(policy: str, forecast: ForecastModel, threshold: float | None = None) -> Driver:
    """The driver for ``--policy``; ``ConfigError`` for an unknown name."""
    if policy == "now":
        return Driver(policy, forecast)
    if policy == "threshold":
        return ThresholdDriver(policy, forecast, threshold)
    if policy == "window":
        return WindowDriver(policy, forecast)
    if policy == "window-once":
        return WindowOnceDriver(policy, forecast)
    if policy == "interruptible":
        return InterruptibleDriver(policy, forecast)
    if policy == "oracle":
        return OracleDriver(policy, forecast)
    raise ConfigError(f"unknown policy {policy!r}: use one of {', '.join(POLICIES)}")
