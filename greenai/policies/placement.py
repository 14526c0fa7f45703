"""Greedy placement of whole jobs into a time-indexed occupancy grid (``cells.Cells``).

Each job takes the cheapest start among those where every cell of its run has room for its
GPUs, and its GPUs are then taken from those cells, so the plan never exceeds the capacity at
any instant. A job may take room before a later job's start whenever its own run (its declared
duration) ends before that room is needed: the grid only ever asks whether the cells it
touches are free, which is backfilling by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from greenai.policies.base import IntArray
from greenai.policies.cells import window_mins
from greenai.policies.windows import FloatArray

NO_ROOM = -1


@dataclass(frozen=True, slots=True)
class Run:
    """One job as the grid sees it: its GPUs, the cells it spans (from cell 0 and from a
    boundary) and the start cells it may take, ``lo..hi``."""

    gpus: int
    first_span: int
    span: int
    lo: int
    hi: int


def cheapest_fit(avail: IntArray, run: Run, cost: FloatArray) -> int:
    """The earliest of the cheapest starts in ``lo..hi`` with room; ``NO_ROOM`` if none."""
    if run.hi < run.lo:
        return NO_ROOM
    room = window_mins(avail, run.first_span, run.span, run.lo, run.hi) >= run.gpus
    if not room.any():
        return NO_ROOM
    return run.lo + int(np.argmin(np.where(room, cost[run.lo : run.hi + 1], np.inf)))


def earliest_fit(avail: IntArray, run: Run) -> int:
    """The first start from ``lo`` on, anywhere in the grid, with room; ``NO_ROOM`` if none."""
    last = avail.size - run.span
    if last < run.lo:
        return NO_ROOM
    room = window_mins(avail, run.first_span, run.span, run.lo, last) >= run.gpus
    found = np.flatnonzero(room)
    return run.lo + int(found[0]) if found.size else NO_ROOM


def take(free: IntArray, run: Run, cell: int) -> None:
    """Take the run's GPUs from the room of every cell it touches when started in ``cell``."""
    length = run.first_span if cell == 0 else run.span
    free[cell : cell + length] -= run.gpus
