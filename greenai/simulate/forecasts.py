"""Forecast models for the simulator (formats.md §3): what a policy may see at each step.

A view issued at trace row ``i`` starts at that row: value 0 is the intensity of the step in
progress, which is observed, not forecast; values 1.. are the model's forecast for the next
steps, up to the horizon. No model other than ``perfect`` reveals a future actual value.
Views are cached per row and noise is seeded per trace point, so results are reproducible and
every job deciding at the same step sees the same forecast.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from greenai.errors import ConfigError
from greenai.policies.view import ForecastView
from greenai.policies.windows import FloatArray
from greenai.traces import Trace

FILL_WINDOW_S = 7 * 86400.0  # the trailing week: what "typical" means beyond the horizon
DAY_S = 86400.0


class ForecastModel:
    """Issues ``ForecastView``s for trace rows; ``name`` is the ``--forecast`` text."""

    def __init__(
        self,
        name: str,
        trace: Trace,
        horizon_h: float,
        build: Callable[[int, int], FloatArray],
        debias_h: float = 0.0,
    ) -> None:
        self.name = name
        self.trace = trace
        self.horizon_steps = max(1, math.floor(horizon_h * 3600 / trace.step_s + 1e-9))
        self._build = build
        self._cache: dict[int, ForecastView] = {}
        self._bias: FloatArray | None = None
        if debias_h > 0:
            self._bias = lead_bias(self._issued_matrix(), trace.actual, debias_h, trace.step_s)
        window = max(1, round(FILL_WINDOW_S / trace.step_s))
        cumulative = np.concatenate(([0.0], np.cumsum(trace.actual)))
        rows = np.arange(len(trace))
        first = np.maximum(rows + 1 - window, 0)
        self._fill = (cumulative[rows + 1] - cumulative[first]) / (rows + 1 - first)

    def view(self, row: int) -> ForecastView:
        """The forecast visible during row ``row`` (cached)."""
        cached = self._cache.get(row)
        if cached is None:
            last = min(row + self.horizon_steps, len(self.trace) - 1)
            values = self._build(row, last)
            if self._bias is not None:
                values = np.maximum(values - self._bias[row, : values.size], 0.0)
            cached = ForecastView(
                row * self.trace.step_s, self.trace.step_s, values, float(self._fill[row])
            )
            self._cache[row] = cached
        return cached

    def view_at(self, t: float) -> ForecastView:
        return self.view(min(int(t // self.trace.step_s), len(self.trace) - 1))

    def _issued_matrix(self) -> FloatArray:
        """Every row's issued values, leads 0..H (NaN past the trace's end)."""
        n, width = len(self.trace), self.horizon_steps + 1
        issued = np.full((n, width), np.nan)
        for row in range(n):
            values = self._build(row, min(row + self.horizon_steps, n - 1))
            issued[row, : values.size] = values
        return issued


def lead_bias(issued: FloatArray, actual: FloatArray, window_h: float, step_s: float) -> FloatArray:
    """``bias[i, k]``: the mean error (forecast - actual) at lead ``k`` over the forecasts whose
    target step ended in the trailing ``window_h`` before row ``i`` started. Only the past is
    used, so subtracting it is a calibration a live system could do from its own history."""
    n, width = issued.shape
    window = max(1, round(window_h * 3600 / step_s))
    rows = np.arange(n)
    bias = np.zeros((n, width))
    for lead in range(1, width):
        errors = np.zeros(n)  # indexed by the row at which the error became known
        known = np.zeros(n)
        errors[lead:] = np.nan_to_num(issued[: n - lead, lead] - actual[lead:])
        known[lead:] = ~np.isnan(issued[: n - lead, lead])
        sums = np.concatenate(([0.0], np.cumsum(errors)))
        counts = np.concatenate(([0.0], np.cumsum(known)))
        first = np.maximum(rows - window, 0)  # errors known at rows first..row-1
        count = counts[rows] - counts[first]
        bias[:, lead] = np.where(count > 0, (sums[rows] - sums[first]) / np.maximum(count, 1), 0)
    return bias


def make_forecast(
    spec: str, trace: Trace, seed: int = 0, horizon_h: float = 48.0, debias_h: float = 0.0
) -> ForecastModel:
    """``perfect``, ``noisy:SIGMA``, ``persistence`` or ``trace``; ``ConfigError`` otherwise.

    ``debias_h > 0`` subtracts each lead's mean error over that many trailing hours (never
    for ``perfect``, whose error is zero by definition).
    """
    actual = trace.actual
    if spec == "perfect":
        return ForecastModel(spec, trace, horizon_h, lambda i, last: actual[i : last + 1])
    if spec.startswith("noisy:"):
        sigma = _sigma(spec)
        return ForecastModel(spec, trace, horizon_h, _noisy(actual, sigma, seed), debias_h)
    if spec == "persistence":
        return ForecastModel(spec, trace, horizon_h, _persistence(trace), debias_h)
    if spec == "trace":
        if trace.forecasts is None:
            raise ConfigError(f"--forecast trace: {trace.name} has no f1..fK forecast columns")
        horizon = min(horizon_h, trace.horizon_steps * trace.step_s / 3600)
        return ForecastModel(spec, trace, horizon, _recorded(trace), debias_h)
    raise ConfigError(f"unknown forecast {spec!r}: use perfect, noisy:SIGMA, persistence or trace")


def _sigma(spec: str) -> float:
    try:
        sigma = float(spec.split(":", 1)[1])
    except ValueError as exc:
        raise ConfigError(f"forecast {spec!r}: SIGMA must be a number, e.g. noisy:0.1") from exc
    if not math.isfinite(sigma) or sigma < 0:
        raise ConfigError(f"forecast {spec!r}: SIGMA must be finite and >= 0")
    return sigma


def _noisy(actual: FloatArray, sigma: float, seed: int) -> Callable[[int, int], FloatArray]:
    """actual x (1 + N(0, sigma)) per point, clipped at 0.

    One seeded draw per trace point, shared by every issue that sees it: a forecast's error for
    a given hour does not change each time it is re-issued (real forecast errors are strongly
    correlated across issues), so a re-planning policy cannot be lured by fresh noise each step.
    """
    noise = np.random.default_rng(seed).normal(0.0, sigma, actual.size)
    noisy = np.maximum(actual * (1.0 + noise), 0.0)

    def build(i: int, last: int) -> FloatArray:
        values = noisy[i : last + 1].copy()
        values[0] = actual[i]
        return values

    return build


def _persistence(trace: Trace) -> Callable[[int, int], FloatArray]:
    """Each step's value is the latest observed value at the same time of day."""
    day = max(1, round(DAY_S / trace.step_s))
    actual = trace.actual

    def build(i: int, last: int) -> FloatArray:
        targets = np.arange(i, last + 1)
        days_back = np.maximum(1, np.ceil((targets - i) / day)).astype(np.int64)
        source = targets - days_back * day
        values = np.where(source >= 0, actual[np.maximum(source, 0)], actual[i])
        values[0] = actual[i]
        return values

    return build


def _recorded(trace: Trace) -> Callable[[int, int], FloatArray]:
    """The ``fk`` columns exactly as issued at row ``i``."""
    forecasts = trace.forecasts
    assert forecasts is not None

    def build(i: int, last: int) -> FloatArray:
        return np.concatenate(([trace.actual[i]], forecasts[i, : last - i]))

    return build
