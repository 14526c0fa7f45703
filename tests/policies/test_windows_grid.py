"""The exact window arithmetic, checked against brute-force integration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.policies.windows import Grid, merge_pieces


def brute_integral(values: list[float], step: float, start: float, end: float) -> float:
    """Integrate second by second (fine enough for integer inputs)."""
    total = 0.0
    t = start
    while t < end - 1e-9:
        nxt = min(end, (np.floor(t / step) + 1) * step)
        total += values[int(t // step)] * (nxt - t)
        t = nxt
    return total


def test_integral_counts_partial_steps_exactly() -> None:
    grid = Grid([5.0, 1.0, 3.0], 3600)
    # half of step 0 (5 x 1800) + all of step 1 (1 x 3600) + a quarter of step 2 (3 x 900)
    assert grid.integral(1800, 3600 * 2 + 900) == pytest.approx(9000 + 3600 + 2700)


def test_best_start_can_begin_mid_step() -> None:
    # A 90-minute job: the cheapest window straddles steps 1 and 2 starting mid-step 1.
    grid = Grid([9.0, 1.0, 1.0, 9.0], 3600)
    start, mean = grid.best_start(0, 3600 * 2.5, 5400)
    assert start == 3600
    assert mean == pytest.approx(1.0)


def test_best_start_takes_the_earliest_of_equal_windows() -> None:
    grid = Grid([2.0, 2.0, 2.0, 2.0], 60)
    assert grid.best_start(30, 120, 60) == (30.0, 2.0)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 500), min_size=2, max_size=20),
    duration=st.integers(1, 5000),
    lo=st.integers(0, 3000),
)
def test_best_start_beats_every_start_on_a_fine_grid(
    values: list[int], duration: int, lo: int
) -> None:
    step = 600.0
    grid = Grid([float(v) for v in values], step)
    hi = grid.span - duration
    if hi < lo:
        return
    start, mean = grid.best_start(lo, hi, duration)
    assert lo <= start <= hi
    fine = np.linspace(lo, hi, 400)
    assert mean <= float(np.min(grid.mean(fine, duration))) + 1e-6
    expected = brute_integral([float(v) for v in values], step, start, start + duration)
    assert mean * duration == pytest.approx(expected, rel=1e-9, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 500), min_size=1, max_size=24),
    needed_frac=st.floats(0.05, 1.0),
)
def test_cheapest_slots_add_up_and_are_cheapest(values: list[int], needed_frac: float) -> None:
    step = 300.0
    grid = Grid([float(v) for v in values], step)
    needed = grid.span * needed_frac
    pieces = grid.cheapest_slots(0, grid.span, needed)
    assert sum(end - start for start, end in pieces) == pytest.approx(needed)
    cost = sum(float(grid.integral(s, e)) for s, e in pieces)
    # The cheapest possible cost: the sorted values, filled greedily.
    remaining, best = needed, 0.0
    for value in sorted(values):
        take = min(step, remaining)
        best += value * take
        remaining -= take
        if remaining <= 0:
            break
    assert cost == pytest.approx(best, rel=1e-9, abs=1e-6)


def test_merge_pieces_joins_touching_pieces() -> None:
    assert merge_pieces([(0, 10), (10, 20), (30, 40)]) == [(0, 20), (30, 40)]


def test_grid_rejects_empty_values() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Grid([], 60)


def test_cheapest_slots_of_an_empty_span_is_empty() -> None:
    assert Grid([1.0, 2.0], 60).cheapest_slots(90, 90, 30) == []
