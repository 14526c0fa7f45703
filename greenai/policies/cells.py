"""A time-indexed occupancy grid for capacity planning: the forecast steps cut into cells.

Cell 0 runs from the decision moment to the next cell boundary, every other cell is one whole
cell, so a start is either now or on a cell boundary, and every forecast step boundary (where
window means have their kinks, ``windows.py``) is one. A job occupies every cell its declared
run touches: counting a partly used cell as full is what keeps "never above capacity at any
instant" true of the plan, at the cost of up to one cell's idle slots per job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from greenai.policies.base import Holds, IntArray
from greenai.policies.view import EPS, ForecastView
from greenai.policies.windows import FloatArray


@dataclass(frozen=True, eq=False)
class Cells:
    """Cell ``k`` is ``[edges[k], edges[k + 1])`` on the batch's axis."""

    edges: FloatArray
    step: float

    @property
    def count(self) -> int:
        return self.edges.size - 1

    def index(self, t: FloatArray | float) -> IntArray:
        """The cell holding each time (clipped to the grid)."""
        found = np.searchsorted(self.edges, np.asarray(t, dtype=np.float64), side="right") - 1
        return np.clip(found, 0, self.count - 1).astype(np.int64)

    def spans(self, duration: float) -> tuple[int, int]:
        """Cells a run of ``duration`` occupies when started in cell 0 and on any boundary."""
        first = int(self.index(self.edges[0] + duration - EPS)) + 1
        return first, max(1, int(np.ceil(duration / self.step - 1e-9)))

    def held(self, holds: Holds | None, rigid_only: bool = False) -> IntArray:
        """GPUs held in each cell by ``holds`` (each counted in every cell it touches)."""
        out = np.zeros(self.count + 1, dtype=np.int64)
        if holds is None or holds.gpus.size == 0:
            return out[:-1]
        live = (holds.end > self.edges[0] + EPS) & (holds.gpus > 0)
        if rigid_only:
            live &= holds.rigid
        first = self.index(np.maximum(holds.start[live], self.edges[0]))
        last = self.index(holds.end[live] - EPS)
        np.add.at(out, first, holds.gpus[live])
        np.add.at(out, last + 1, -holds.gpus[live])
        return np.cumsum(out[:-1])


def make_cells(view: ForecastView, now: float, until: float, cell_s: float) -> Cells:
    """Cells from ``now`` to at least ``until`` (and one more, so no run is clipped), each
    the forecast step split evenly into parts of at most ``cell_s`` seconds: whole-cell
    occupancy wastes less of a short job's slots, and every step boundary stays an edge."""
    step = view.step / max(1, math.ceil(view.step / cell_s - 1e-9))
    boundary = view.origin + (math.floor((now - view.origin) / step + EPS) + 1) * step
    count = max(1, math.ceil((until - boundary) / step + 1e-9)) + 1
    edges = np.concatenate(([now], boundary + step * np.arange(count + 1)))
    return Cells(edges, step)


def window_mins(avail: IntArray, first_span: int, span: int, lo: int, hi: int) -> IntArray:
    """For starts ``lo..hi``: the fewest free GPUs over the cells each start would occupy
    (``first_span`` cells from cell 0, ``span`` from any later cell)."""
    out = np.empty(hi - lo + 1, dtype=np.int64)
    begin = lo
    if lo == 0:
        out[0] = avail[:first_span].min()
        begin = 1
    if begin <= hi:
        windows = sliding_window_view(avail[begin : hi + span], span)
        out[begin - lo :] = windows.min(axis=1)
    return out
