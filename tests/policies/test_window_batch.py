"""The window policy plans a whole queue in one array pass: exactly what the one-job search
(``Grid.best_start``, or ``best_expected_start`` on uncertain views) finds job by job."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.policies.view import EPS, ForecastView
from greenai.policies.window import best_expected_start
from greenai.policies.windows import Grid
from tests.policies.helpers import job, plan, view

STEP = 1800.0


def one_job_search(seen: ForecastView, now: float, duration: float, deadline: float) -> float:
    """The reference: the earliest best start of one job, or ``now`` when its slack is spent."""
    latest = deadline - duration
    if now >= latest - EPS:
        return now
    grid = seen.grid_until(deadline)
    lo, hi = now - seen.origin, latest - seen.origin
    if seen.uncertain:
        offset, _ = best_expected_start(seen, grid, lo, hi, duration)
    else:
        offset, _ = grid.best_start(lo, hi, duration)
    start = seen.origin + offset
    return start if start > now + EPS else now


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.integers(0, 400).map(float), min_size=2, max_size=40),
    jobs=st.lists(
        st.tuples(st.integers(1, 8), st.integers(0, 200)),  # (duration steps/2, slack steps/2)
        min_size=1,
        max_size=15,
    ),
    now_steps=st.floats(0, 3),
    uncertain=st.booleans(),
)
def test_batched_equals_one_by_one(
    values: list[float], jobs: list[tuple[int, int]], now_steps: float, uncertain: bool
) -> None:
    spread = [0.0, *([35.0] * (len(values) - 1))] if uncertain else None
    seen = view(values, step=STEP, spread=spread, signal_sd=40.0 if uncertain else None)
    now = now_steps * STEP
    batch = [job(0.0, d * STEP / 2, now + s * STEP / 2) for d, s in jobs]
    planned = plan("window", batch, seen, now)
    expected = [
        one_job_search(seen, now, float(j["duration"]), float(j["deadline"]))  # type: ignore[arg-type]
        for j in batch
    ]
    np.testing.assert_allclose(planned.starts, expected, rtol=0, atol=1e-6)


def test_a_window_ending_just_past_the_padded_grid_is_not_clipped() -> None:
    # The window [5400.0002, 9000.0002) ends 0.0002 s past five whole steps; clipping it there
    # understated its mean (0.49999997 < 0.5) and made a tie look like a better window.
    seen = view([0.0, 1.0], step=STEP)
    now = 0.0002
    target = job(0.0, 3600.0, now + 9000.0 - 3600.0)
    alone = plan("window", [target], seen, now)
    together = plan("window", [target, job(0.0, 900.0, 20000.0 - 900.0)], seen, now)
    assert alone.starts[0] == together.starts[0]
    assert abs(alone.starts[0] - 3600.0) < 1e-6
    assert alone.expected[0] == 0.5


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 5).map(float), min_size=4, max_size=60),
    lo_frac=st.floats(0, 0.5),
    his=st.lists(st.floats(0, 1), min_size=1, max_size=12),
    duration_steps=st.floats(0.1, 3),
)
def test_batched_best_starts_equal_one_by_one_and_the_scan(
    values: list[float], lo_frac: float, his: list[float], duration_steps: float
) -> None:
    grid = Grid(values, 1800.0)
    duration = duration_steps * 1800.0
    top = grid.span - duration
    if top <= 0:
        return
    lo = lo_frac * top
    his_s = np.asarray([lo + h * (top - lo) for h in his])
    batched = grid.best_starts(lo, his_s, duration)
    single = [grid.best_start(lo, float(hi), duration) for hi in his_s]
    assert [s for s, _ in batched] == [s for s, _ in single]
    assert [m for _, m in batched] == pytest.approx([m for _, m in single])
    # The binary search answers exactly what the plain scan over candidates answered.
    assert batched == _scan_best_starts(grid, lo, his_s, duration)


def _scan_best_starts(grid: Grid, lo: float, his: np.ndarray, duration: float) -> list[tuple]:
    """The batched search as it was, one scan per ``hi``: the binary search must agree exactly."""
    candidates = grid.candidate_starts(lo, float(his.max()), duration)
    means = grid.mean(candidates, duration)
    prefix_min = np.minimum.accumulate(means)
    counts = np.searchsorted(candidates, his, side="right")
    hi_means = grid.mean(his, duration)
    best = np.minimum(prefix_min[counts - 1], hi_means)
    limits = best + 1e-9 * np.maximum(1.0, np.abs(best))
    found = []
    for count, limit, hi, hi_mean in zip(counts, limits, his, hi_means, strict=True):
        good = np.flatnonzero(means[:count] <= limit)
        found.append((candidates[good[0]], means[good[0]]) if good.size else (hi, hi_mean))
    return [(float(s), float(m)) for s, m in found]
