"""The batch planner agrees exactly with Grid.best_start, and respects deadlines."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.domain import Action, JobState
from greenai.jobs import JobRecord, OnDeadline
from greenai.planner import plan_jobs
from greenai.policies.windows import Grid
from tests.daemon.helpers import T0, forecast


def record(job_id: str, hours: float, deadline_h: float, **kwargs: object) -> JobRecord:
    return JobRecord(
        id=job_id,
        name=job_id,
        command=("true",),
        state=JobState.QUEUED,
        on_deadline=OnDeadline.RUN,
        submitted_at=T0,
        deadline=T0 + timedelta(hours=deadline_h),
        duration=timedelta(hours=hours),
        gpus=1,
        interruptible=False,
        attempts=0,
        updated_at=T0,
        **kwargs,  # type: ignore[arg-type]
    )


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 5).map(float), min_size=4, max_size=60),
    lo_frac=st.floats(0, 0.5),
    his=st.lists(st.floats(0, 1), min_size=1, max_size=12),
    duration_steps=st.floats(0.1, 3),
)
def test_batched_best_starts_equal_one_by_one(
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


def test_window_plan_never_before_now_nor_past_latest_start() -> None:
    values = [300.0, 300.0, 100.0, 100.0, 300.0, 50.0, 50.0, 300.0] * 2
    jobs = [record("a", 1, 12), record("b", 1, 2.5), record("c", 1, 0.5)]
    decisions = {d.job_id: d for d in plan_jobs(jobs, forecast(values), T0)}
    assert decisions["a"].planned_start == T0 + timedelta(hours=2.5)
    assert decisions["a"].forecast_intensity == pytest.approx(50.0)
    assert decisions["b"].planned_start == T0 + timedelta(hours=1)  # 50s are after its deadline
    assert decisions["c"].planned_start == T0  # already late: start now
    assert decisions["c"].action is Action.START and decisions["a"].action is Action.DEFER


def test_threshold_plan_takes_the_first_clean_step() -> None:
    values = [300.0, 140.0, 300.0, 100.0, 100.0, 300.0] * 4
    (decision,) = plan_jobs([record("a", 1, 12)], forecast(values), T0, "threshold", 150.0)
    assert decision.planned_start == T0 + timedelta(minutes=30)
    assert decision.policy == "threshold" and decision.threshold == 150.0
    strict = record("b", 1, 12, threshold=10.0)
    (never,) = plan_jobs([strict], forecast(values), T0, "threshold")
    assert never.action is Action.DEFER and never.threshold == 10.0
    # Nothing that clean: it waits, re-checking, until the latest start that meets the deadline.
    (last,) = plan_jobs([strict], forecast(values), T0 + timedelta(hours=11), "threshold")
    assert last.action is Action.START and last.policy == "threshold"
    assert "latest start" in last.reason


def test_threshold_without_any_threshold_is_the_window_policy() -> None:
    (decision,) = plan_jobs([record("a", 1, 12)], forecast([300.0, 100.0] * 12), T0, "threshold")
    assert decision.policy == "window"


def test_without_a_usable_forecast_jobs_start_now() -> None:
    flat = forecast([400.0] * 10, static=True)
    for given_forecast in (None, flat, forecast([1.0], start=T0 - timedelta(days=1))):
        (decision,) = plan_jobs([record("a", 1, 12)], given_forecast, T0)
        assert decision.action is Action.START and decision.planned_start == T0
