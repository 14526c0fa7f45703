"""Capacity held back for rigid work, hour by hour, from the rigid demand seen so far.

Rigid jobs start at submit; flexible ones wait for clean hours. When deferred work fills a
clean night to the brim, the rigid jobs that arrive in it queue past their SLA. So the fleet
planner keeps, in each cell, ``reserve = forecast - rigid GPUs already known to be held then``
free of flexible work. The forecast for an hour of day is a quantile (or the mean) of the
rigid demand at that hour of day over the last ``days`` days; an hour of day not seen yet
takes the quantile over every hour seen. Only ended hours are ever given (``RigidDemand``), so
the forecast is learned from the past of each decision and nothing after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from greenai.policies.base import IntArray, RigidDemand
from greenai.policies.windows import FloatArray

HOURS_PER_DAY = 24
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, eq=False)
class RigidForecast:
    """Forecast rigid GPUs by UTC hour of day, and how it was made (for decision reasons)."""

    by_hour: FloatArray
    quantile: float | None
    hours_seen: int

    def describe(self) -> str:
        how = "mean" if self.quantile is None else f"p{round(100 * self.quantile)}"
        return f"{how} of {self.hours_seen} past hours"


def forecast_rigid(demand: RigidDemand | None, quantile: float | None, days: int) -> RigidForecast:
    """The hour-of-day forecast from the last ``days`` days of ``demand`` (zero without any)."""
    if demand is None or demand.hourly.size == 0:
        return RigidForecast(np.zeros(HOURS_PER_DAY), quantile, 0)
    recent = demand.hourly[-days * HOURS_PER_DAY :]
    first = demand.first_hour + demand.hourly.size - recent.size
    hour_of_day = (first + np.arange(recent.size)) % HOURS_PER_DAY
    overall = _summary(recent, quantile)
    by_hour = np.full(HOURS_PER_DAY, overall)
    for hour in np.unique(hour_of_day).tolist():
        by_hour[hour] = _summary(recent[hour_of_day == hour], quantile)
    return RigidForecast(by_hour, quantile, int(recent.size))


def _summary(values: FloatArray, quantile: float | None) -> float:
    return float(values.mean() if quantile is None else np.quantile(values, quantile))


def reserve_per_cell(
    forecast: RigidForecast, epoch_starts: FloatArray, known_rigid: IntArray
) -> tuple[IntArray, IntArray]:
    """``(reserve, forecast)`` in whole GPUs for cells starting at ``epoch_starts`` (Unix
    seconds): the forecast rigid demand less the rigid GPUs already held then."""
    hours = np.floor(epoch_starts / SECONDS_PER_HOUR).astype(np.int64) % HOURS_PER_DAY
    expected = np.ceil(forecast.by_hour[hours] - 1e-9).astype(np.int64)
    return np.maximum(expected - known_rigid, 0), expected
