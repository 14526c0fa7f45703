"""The batch planner agrees exactly with Grid.best_start, and respects deadlines."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.core.domain import Action, Decision, JobState, Signal
from greenai.policies.windows import Grid
from greenai.scheduling.planner import plan_jobs, plan_waiting
from greenai.storage.records import (
    JobRecord,
    OnDeadline,
    PayloadWriter,
    WaitingJobs,
    decision_payload,
)
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


texts = st.text(max_size=12)
maybe_float = st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-5, 500))
times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(
    shared=st.tuples(times, maybe_float, maybe_float, st.one_of(st.none(), texts)),
    region=st.one_of(st.none(), texts),
    signal=st.one_of(st.none(), st.sampled_from(Signal)),
    warnings=st.lists(texts, max_size=2).map(tuple),
    job=st.tuples(texts, texts, texts, maybe_float, times, times, maybe_float),
    action=st.sampled_from(["start", "defer"]),
)
def test_payload_text_is_what_json_dumps_writes(
    shared: tuple,
    region: str | None,
    signal: Signal | None,
    warnings: tuple,
    job: tuple,
    action: str,
) -> None:
    at, intensity, minimum, provider = shared
    job_id, policy, reason, threshold, start, deadline, expected = job
    common = {"intensity": intensity, "forecast_min": minimum, "provider": provider}
    base = Decision(at, "", "", Action.DEFER, "", region=region, signal=signal, **common)
    base = replace(base, fallback=provider, warnings=warnings)
    decision = replace(
        base,
        job_id=job_id,
        policy=policy,
        action=Action(action),
        reason=reason,
        threshold=threshold,
        planned_start=start,
        deadline=deadline,
        forecast_intensity=expected,
    )
    (text,) = PayloadWriter(base).render(
        [job_id], [policy], [action], [reason], [threshold], [start], [deadline], [expected]
    )
    assert text == json.dumps(decision_payload(decision))


def scheduled(job: JobRecord, start: datetime) -> JobRecord:
    return replace(job, state=JobState.SCHEDULED, planned_start=start)


def test_a_pass_as_columns_is_the_pass_as_decisions() -> None:
    values = [300.0, 300.0, 100.0, 100.0, 300.0, 50.0, 50.0, 300.0] * 2
    jobs = [
        record("a", 1, 12),
        scheduled(record("b", 1, 2.5), T0 + timedelta(hours=1)),
        record("c", 1, 0.5, policy="threshold", threshold=120.0),
        scheduled(record("d", 0.5, 12), T0 + timedelta(hours=9)),
    ]
    plan = plan_waiting(WaitingJobs.of(jobs), forecast(values), T0)
    decisions = plan_jobs(jobs, forecast(values), T0)
    assert plan.decisions() == decisions
    moved = plan.moved(timedelta(seconds=1))
    assert moved == [0, 2, 3]  # b keeps its start; d's moves from 9 h to 2.5 h
    rows = plan.rows(moved)
    assert rows.job_ids == ["a", "c", "d"] and rows.expected == ["queued", "queued", "scheduled"]
    assert rows.actions == [str(decisions[i].action) for i in moved]
    assert [json.loads(p) for p in rows.payloads] == [decision_payload(decisions[i]) for i in moved]
