"""The daemon's batched window planning is exactly the simulator's one-job policy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.policies.view import ForecastView, JobTimes, StartDecision
from greenai.policies.window import (
    SPENT,
    plan_window,
    plan_window_arrays,
    plan_window_many,
    window_reason,
)

STEP = 1800.0


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.integers(0, 400).map(float), min_size=2, max_size=40),
    jobs=st.lists(
        st.tuples(st.integers(1, 8), st.integers(0, 200)),  # (duration steps/2, slack steps/2)
        min_size=1,
        max_size=15,
    ),
    now_steps=st.floats(0, 3),
)
def test_batched_equals_one_by_one(
    values: list[float], jobs: list[tuple[int, int]], now_steps: float
) -> None:
    view = ForecastView(0.0, STEP, np.asarray(values))
    now = now_steps * STEP
    times = [
        JobTimes(f"j{i}", 0.0, d * STEP / 2, now + d * STEP / 2 + slack * STEP / 2)
        for i, (d, slack) in enumerate(jobs)
    ]
    batched = plan_window_many(times, view, now)
    single = [plan_window(job, view, now) for job in times]
    assert [b.start for b in batched] == pytest.approx([s.start for s in single])
    assert [b.expected for b in batched] == pytest.approx([s.expected for s in single])


def test_uncertain_views_take_the_one_job_path() -> None:
    values = np.asarray([100.0, 90.0, 95.0, 10.0])
    view = ForecastView(
        0.0, STEP, values, spread=np.asarray([0.0, 50.0, 50.0, 50.0]), signal_sd=30.0
    )
    job = JobTimes("j", 0.0, STEP, 4 * STEP)
    assert plan_window_many([job], view, 0.0) == [plan_window(job, view, 0.0)]


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.integers(0, 400).map(float), min_size=2, max_size=20),
    spreads=st.lists(st.integers(0, 60).map(float), min_size=20, max_size=20),
    jobs=st.lists(st.tuples(st.integers(1, 8), st.integers(0, 60)), min_size=1, max_size=8),
    now_steps=st.floats(0, 3),
)
def test_arrays_take_the_one_job_path_exactly_when_uncertain(
    values: list[float], spreads: list[float], jobs: list[tuple[int, int]], now_steps: float
) -> None:
    spread = np.asarray(spreads[: len(values)])
    view = ForecastView(0.0, STEP, np.asarray(values), spread=spread, signal_sd=40.0)
    now = now_steps * STEP
    times = [JobTimes("j", 0.0, d * STEP / 2, now + (d + s) * STEP / 2) for d, s in jobs]
    durations = np.asarray([job.duration for job in times])
    deadlines = np.asarray([job.deadline for job in times])
    starts, means, kinds = plan_window_arrays(durations, deadlines, view, now)
    arrays = [
        StartDecision(s, None if k == SPENT else m, window_reason(k, m))
        for s, m, k in zip(starts.tolist(), means.tolist(), kinds.tolist(), strict=True)
    ]
    assert arrays == [plan_window(job, view, now) for job in times]


def test_a_window_ending_just_past_the_padded_grid_is_not_clipped() -> None:
    # The window [5400.0002, 9000.0002) ends 0.0002 s past five whole steps; clipping it there
    # understated its mean (0.49999997 < 0.5) and made a tie look like a better window.
    view = ForecastView(0.0, STEP, np.asarray([0.0, 1.0]))
    now = 0.0002
    job = JobTimes("j", 0.0, 3600.0, now + 9000.0)
    planned = plan_window(job, view, now)
    assert planned == plan_window_many([job, JobTimes("k", 0.0, 900.0, 20000.0)], view, now)[0]
    assert planned.start == pytest.approx(3600.0)
    assert planned.expected == 0.5
