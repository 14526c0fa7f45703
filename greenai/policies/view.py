"""What a policy sees at one decision: the forecast on a float-seconds time axis.

Policies work in seconds on the caller's axis (the simulator uses seconds from the trace's start;
`greenai run` and the daemon use seconds from the visible forecast's start) so that one decision
costs a few numpy operations on prefix sums and never a per-minute Python loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from greenai.policies.windows import FloatArray, Grid

EPS = 1e-6  # seconds: anything closer than a microsecond is the same moment


@dataclass(frozen=True, eq=False)
class ForecastView:
    """Forecast values visible at a decision: ``values[i]`` holds on
    ``[origin + i*step, origin + (i+1)*step)``. Beyond ``end`` the policy knows nothing; it
    assumes ``fill`` there (a typical value, e.g. the trailing week's mean), which makes long
    jobs comparable with short horizons without pretending to know the future.

    ``spread[i]`` (optional) is the standard deviation of the error expected on ``values[i]``
    (0 for an observed value), estimated from the forecast's own recent errors; ``signal_sd`` is
    how much the actual intensity has varied lately. Without them the values are taken as exact.
    """

    origin: float
    step: float
    values: FloatArray
    fill: float | None = None
    spread: FloatArray | None = None
    signal_sd: float | None = None
    grid: Grid = field(init=False, repr=False)
    spread_grid: Grid = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", Grid(self.values, self.step))
        spread = np.zeros(self.values.size) if self.spread is None else self.spread
        object.__setattr__(self, "spread_grid", Grid(spread, self.step))

    @property
    def end(self) -> float:
        return self.origin + self.grid.span

    @property
    def beyond(self) -> float:
        """The value assumed after ``end``."""
        return float(np.mean(self.values)) if self.fill is None else self.fill

    def value_at(self, t: float) -> float:
        index = int((t - self.origin) // self.step)
        return float(self.values[min(max(index, 0), self.values.size - 1)])

    def next_boundary(self, t: float) -> float:
        """The first step boundary strictly after ``t`` (the next chance to re-plan)."""
        return self.origin + (math.floor((t - self.origin) / self.step + EPS) + 1) * self.step

    @property
    def uncertain(self) -> bool:
        """Whether some visible value has a known error spread and a prior to weigh it with."""
        return self.spread is not None and bool(np.any(self.spread > 0)) and bool(self.signal_sd)

    def _steps_missing_until(self, until: float) -> int:
        """Whole steps to add so the grid covers ``until`` entirely. Rounded up with no
        tolerance: a window end even a microsecond past the grid would be clipped (and its mean
        understated), while an extra step of padding changes no mean."""
        return math.ceil((until - self.end) / self.step)

    def grid_until(self, until: float) -> Grid:
        """The visible grid, extended with ``beyond`` so that it reaches ``until``."""
        missing = self._steps_missing_until(until)
        if missing <= 0:
            return self.grid
        return Grid(np.concatenate((self.values, np.full(missing, self.beyond))), self.step)

    def spread_until(self, until: float) -> Grid:
        """``spread`` as a grid reaching ``until``; 0 beyond the horizon, where ``beyond`` is
        already a typical value rather than one noisy forecast among many."""
        missing = self._steps_missing_until(until)
        if missing <= 0:
            return self.spread_grid
        return Grid(np.concatenate((self.spread_grid.values, np.zeros(missing))), self.step)
