"""Exact window arithmetic over piecewise-constant intensity, with numpy prefix sums.

Times here are float seconds from the grid's start (``t = 0`` is the start of ``values[0]``);
``values[i]`` holds on ``[i*step, (i+1)*step)``. Integrals are in (g/kWh)*s, so
``integral / duration`` is a mean intensity and ``integral * kW / 3600`` is grams.

The mean intensity of a window ``[s, s + d)`` is piecewise linear in ``s`` with kinks only where
``s`` or ``s + d`` crosses a grid boundary, so the best start inside ``[lo, hi]`` is at ``lo``,
``hi`` or one of those kinks: checking them all is exact, not an approximation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class Grid:
    """A regular intensity grid with its prefix integral, built once and queried many times."""

    __slots__ = ("cumulative", "step", "values")

    def __init__(self, values: Sequence[float] | FloatArray, step_s: float) -> None:
        self.values: FloatArray = np.asarray(values, dtype=np.float64)
        if self.values.ndim != 1 or self.values.size == 0:
            raise ValueError("a grid needs a non-empty 1-D array of values")
        if step_s <= 0:
            raise ValueError("grid step must be positive")
        self.step = float(step_s)
        self.cumulative: FloatArray = np.concatenate(([0.0], np.cumsum(self.values) * self.step))

    @property
    def span(self) -> float:
        """Seconds covered by the grid."""
        return self.values.size * self.step

    def integral_to(self, t: FloatArray | float) -> FloatArray:
        """Integral of intensity over ``[0, t)`` for each ``t`` (clipped to the grid)."""
        t_arr = np.clip(np.asarray(t, dtype=np.float64), 0.0, self.span)
        index = np.minimum((t_arr // self.step).astype(np.int64), self.values.size - 1)
        return self.cumulative[index] + (t_arr - index * self.step) * self.values[index]

    def integral(self, start: FloatArray | float, end: FloatArray | float) -> FloatArray:
        """Exact integral over ``[start, end)``; partial steps included."""
        return self.integral_to(end) - self.integral_to(start)

    def mean(self, start: FloatArray | float, duration: float) -> FloatArray:
        """Mean intensity over ``[start, start + duration)``."""
        if duration <= 0:
            return np.asarray(self.values[self._index(start)], dtype=np.float64)
        return self.integral(start, np.asarray(start) + duration) / duration

    def _index(self, t: FloatArray | float) -> NDArray[np.int64]:
        t_arr = np.clip(np.asarray(t, dtype=np.float64), 0.0, self.span - self.step / 2)
        return (t_arr // self.step).astype(np.int64)

    def candidate_starts(self, lo: float, hi: float, duration: float) -> FloatArray:
        """Every start in ``[lo, hi]`` where the window mean can have a minimum, sorted."""
        if hi < lo:
            return np.asarray([lo], dtype=np.float64)
        first = int(np.ceil(lo / self.step))
        last = int(np.floor(hi / self.step))
        boundaries = np.arange(first, last + 1, dtype=np.float64) * self.step
        shifted_first = int(np.ceil((lo + duration) / self.step))
        shifted_last = int(np.floor((hi + duration) / self.step))
        ends = np.arange(shifted_first, shifted_last + 1, dtype=np.float64) * self.step - duration
        points = np.concatenate(([lo, hi], boundaries, ends))
        return np.unique(points[(points >= lo) & (points <= hi)])

    def best_start(self, lo: float, hi: float, duration: float) -> tuple[float, float]:
        """The earliest start in ``[lo, hi]`` whose window has the lowest mean intensity.

        Returns ``(start, mean)``. Windows must lie inside the grid: ``hi + duration`` is clipped
        to the grid's end by the caller's choice of ``hi``.
        """
        starts = self.candidate_starts(lo, hi, duration)
        means = self.mean(starts, duration)
        # Equal windows within float noise count as equal, so the earliest one wins.
        best = float(np.min(means))
        tolerance = 1e-9 * max(1.0, abs(best))
        chosen = int(np.flatnonzero(means <= best + tolerance)[0])
        return float(starts[chosen]), float(means[chosen])

    def best_starts(self, lo: float, his: FloatArray, duration: float) -> list[tuple[float, float]]:
        """``[self.best_start(lo, hi, duration) for hi in his]``, sharing the work (see
        ``best_starts_arrays``)."""
        starts, means = self.best_starts_arrays(lo, his, duration)
        return list(zip(starts.tolist(), means.tolist(), strict=True))

    def best_starts_arrays(
        self, lo: float, his: FloatArray, duration: float
    ) -> tuple[FloatArray, FloatArray]:
        """``best_start(lo, hi, duration)`` for every ``hi`` in ``his``, as ``(starts, means)``.

        For a fixed ``lo`` the candidates of each ``hi`` are the shared candidates up to ``hi``
        plus ``hi`` itself, so one pass answers every ``hi`` (many jobs, one forecast). The
        earliest candidate within the tolerance of the best is the first one where the running
        minimum of the means drops to that limit: a binary search, not a scan per job.
        """
        candidates = self.candidate_starts(lo, float(his.max()), duration)
        means = self.mean(candidates, duration)
        prefix_min = np.minimum.accumulate(means)
        counts = np.searchsorted(candidates, his, side="right")
        hi_means = self.mean(his, duration)
        best = np.minimum(prefix_min[counts - 1], hi_means)
        limits = best + 1e-9 * np.maximum(1.0, np.abs(best))
        first = np.searchsorted(-prefix_min, -limits, side="left")  # prefix_min is non-increasing
        found = first < counts
        first = np.minimum(first, candidates.size - 1)
        return np.where(found, candidates[first], his), np.where(found, means[first], hi_means)

    def cheapest_slots(self, lo: float, hi: float, needed: float) -> list[tuple[float, float]]:
        """The cheapest set of pieces inside ``[lo, hi)`` adding up to ``needed`` seconds.

        Pieces are grid steps clipped to ``[lo, hi)``, taken cheapest first (earliest among
        equals); the last one taken is shortened, keeping its earliest part, so the total is
        exact. Returns merged, sorted ``(start, end)`` pieces.
        """
        if needed <= 0 or hi <= lo:
            return []
        first = int(np.floor(lo / self.step))
        last = int(np.ceil(hi / self.step))
        idx = np.arange(max(first, 0), min(last, self.values.size))
        piece_starts = np.maximum(idx * self.step, lo)
        piece_ends = np.minimum((idx + 1) * self.step, hi)
        lengths = piece_ends - piece_starts
        keep = lengths > 0
        idx, piece_starts, lengths = idx[keep], piece_starts[keep], lengths[keep]
        order = np.lexsort((piece_starts, self.values[idx]))
        taken = np.cumsum(lengths[order])
        count = int(np.searchsorted(taken, needed - 1e-9)) + 1
        chosen = order[:count]
        before_last = float(taken[count - 2]) if count > 1 else 0.0
        last_length = min(float(lengths[chosen[-1]]), needed - before_last)
        pieces: list[tuple[float, float]] = []
        for k in sorted(chosen.tolist(), key=lambda c: piece_starts[c]):
            length = last_length if k == chosen[-1] else float(lengths[k])
            pieces.append((float(piece_starts[k]), float(piece_starts[k]) + length))
        return merge_pieces(pieces)


def merge_pieces(pieces: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Join touching ``(start, end)`` pieces; input sorted by start."""
    merged: list[tuple[float, float]] = []
    for start, end in pieces:
        if merged and abs(merged[-1][1] - start) < 1e-6:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
