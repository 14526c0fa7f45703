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
        if self.hours_seen == 0:
            return "no past hour yet: the rigid GPUs held now"
        how = "mean" if self.quantile is None else f"p{round(100 * self.quantile)}"
        return f"{how} of {self.hours_seen} past hours"


def forecast_rigid(
    demand: RigidDemand | None, quantile: float | None, days: int, held_now: float = 0.0
) -> RigidForecast:
    """The hour-of-day forecast from the last ``days`` days of ``demand``; with no past hour
    yet, the rigid GPUs held now at every hour (persistence: better than keeping nothing)."""
    if demand is None or demand.hourly.size == 0:
        return RigidForecast(np.full(HOURS_PER_DAY, float(held_now)), quantile, 0)
    recent = demand.hourly[-days * HOURS_PER_DAY :]
    first = demand.first_hour + demand.hourly.size - recent.size
    overall = _summary(np.sort(recent)[:, None], recent.size, quantile)[0]
    lead = first % HOURS_PER_DAY  # the table's rows start at 00:00 UTC
    table = np.full(-(-(lead + recent.size) // HOURS_PER_DAY) * HOURS_PER_DAY, np.inf)
    table[lead : lead + recent.size] = recent
    columns = np.sort(table.reshape(-1, HOURS_PER_DAY), axis=0)  # padding sorts last
    counts = np.isfinite(columns).sum(axis=0)
    columns[~np.isfinite(columns)] = 0.0  # past each column's count: never read as a value
    by_hour = np.where(counts > 0, _summary(columns, counts, quantile), overall)
    return RigidForecast(by_hour, quantile, int(recent.size))


def _summary(columns: FloatArray, counts: IntArray | int, quantile: float | None) -> FloatArray:
    """The mean or linear-interpolated quantile of the first ``counts`` (sorted) values of
    each column: one pass for all 24 hours of day instead of 24 quantile calls per plan."""
    counts = np.maximum(np.asarray(counts), 1)
    if quantile is None:
        return np.asarray(columns.sum(axis=0) / counts, dtype=np.float64)
    at = quantile * (counts - 1)
    below = np.floor(at).astype(np.int64)
    above = np.minimum(below + 1, counts - 1)
    pick = np.arange(columns.shape[1])
    low, high = columns[below, pick], columns[above, pick]
    return np.asarray(low + (at - below) * (high - low), dtype=np.float64)


def reserve_per_cell(
    forecast: RigidForecast, epoch_starts: FloatArray, known_rigid: IntArray
) -> tuple[IntArray, IntArray]:
    """``(reserve, forecast)`` in whole GPUs for cells starting at ``epoch_starts`` (Unix
    seconds): the forecast rigid demand less the rigid GPUs already held then."""
    hours = np.floor(epoch_starts / SECONDS_PER_HOUR).astype(np.int64) % HOURS_PER_DAY
    expected = np.ceil(forecast.by_hour[hours] - 1e-9).astype(np.int64)
    return np.maximum(expected - known_rigid, 0), expected
