"""Forecast models for the simulator (docs/formats.md §3): what a policy may see at each step.

A view issued at trace row ``i`` starts at that row: value 0 is the intensity of the step in
progress, which is observed, not forecast; values 1.. are the model's forecast for the next
steps, up to the horizon. No model other than ``perfect`` reveals a future actual value.
With a calibration window (``debias_h``), each view is de-biased per lead and carries how
uncertain each value is (the spread of that lead's recent errors) and how much the actual
intensity has varied lately: what a policy needs to tell a real difference from noise. All of
it comes from errors and values already observed at the view's row.
Views are cached per row and noise is seeded per trace point, so results are reproducible and
every job deciding at the same step sees the same forecast.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from greenai.core.errors import ConfigError
from greenai.formats.traces import Trace
from greenai.policies.view import ForecastView
from greenai.policies.windows import FloatArray

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
        self._spread: FloatArray | None = None
        self._signal_sd: FloatArray | None = None
        if debias_h > 0:
            issued = self._issued_matrix()
            self._bias, self._spread = lead_errors(issued, trace.actual, debias_h, trace.step_s)
            self._signal_sd = trailing_sd(trace.actual, debias_h, trace.step_s)
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
            spread, signal_sd = None, None
            if self._bias is not None and self._spread is not None and self._signal_sd is not None:
                values = np.maximum(values - self._bias[row, : values.size], 0.0)
                spread = self._spread[row, : values.size].copy()
                spread[0] = 0.0  # the step in progress is observed
                signal_sd = float(self._signal_sd[row])
            cached = ForecastView(
                row * self.trace.step_s,
                self.trace.step_s,
                values,
                float(self._fill[row]),
                spread,
                signal_sd,
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
    return lead_errors(issued, actual, window_h, step_s)[0]


def lead_errors(
    issued: FloatArray, actual: FloatArray, window_h: float, step_s: float
) -> tuple[FloatArray, FloatArray]:
    """``(bias, spread)``: per row ``i`` and lead ``k``, the mean and the standard deviation of
    the errors at lead ``k`` observed in the trailing ``window_h`` before row ``i`` (as in
    ``lead_bias``). ``spread`` is the error left once ``bias`` is subtracted; 0 where fewer than
    two errors are known yet."""
    n, width = issued.shape
    window = max(1, round(window_h * 3600 / step_s))
    errors = np.zeros((n, width))  # indexed by the row at which the error became known
    known = np.zeros((n, width))
    for lead in range(1, width):
        errors[lead:, lead] = np.nan_to_num(issued[: n - lead, lead] - actual[lead:])
        known[lead:, lead] = ~np.isnan(issued[: n - lead, lead])
    count = _trailing_sums(known, window)
    mean = _trailing_sums(errors, window) / np.maximum(count, 1)
    square = _trailing_sums(errors * errors, window) / np.maximum(count, 1)
    variance = np.maximum(square - mean * mean, 0.0) * count / np.maximum(count - 1, 1)
    return np.where(count > 0, mean, 0.0), np.where(count > 1, np.sqrt(variance), 0.0)


def trailing_sd(actual: FloatArray, window_h: float, step_s: float) -> FloatArray:
    """``sd[i]``: the standard deviation of the actual intensity over the trailing ``window_h``
    before row ``i`` (0 until two values are known): how far apart values typically are."""
    window = max(1, round(window_h * 3600 / step_s))
    values = actual[:, None]
    count = _trailing_sums(np.ones_like(values), window)[:, 0]
    mean = _trailing_sums(values, window)[:, 0] / np.maximum(count, 1)
    square = _trailing_sums(values * values, window)[:, 0] / np.maximum(count, 1)
    variance = np.maximum(square - mean * mean, 0.0) * count / np.maximum(count - 1, 1)
    return np.where(count > 1, np.sqrt(variance), 0.0)


def _trailing_sums(series: FloatArray, window: int) -> FloatArray:
    """``out[i]``: the sum of ``series`` over rows ``i - window .. i - 1`` (never row ``i``)."""
    zero = np.zeros((1, series.shape[1]))
    cumulative = np.concatenate((zero, np.cumsum(series, axis=0)))
    rows = np.arange(series.shape[0])
    return cumulative[rows] - cumulative[np.maximum(rows - window, 0)]


def make_forecast(
    spec: str, trace: Trace, seed: int = 0, horizon_h: float = 48.0, debias_h: float = 0.0
) -> ForecastModel:
    """``perfect``, ``noisy:SIGMA``, ``persistence`` or ``trace``; ``ConfigError`` otherwise.

    ``debias_h > 0`` subtracts each lead's mean error over that many trailing hours and
    attaches the spread of those errors and of the actual intensity to every view (never for
    ``perfect``, whose error is zero by definition).
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
