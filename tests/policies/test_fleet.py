"""The ``fleet`` planner: capacity at every instant, deadlines met or reported, the rigid
reserve, backfill and the flexible fraction, on plans small enough to check by hand."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.policies.base import Capacity, Holds, JobBatch, RigidDemand
from greenai.policies.fleet import Fleet, FleetPlan, FleetSettings, plan_fleet
from greenai.policies.placement import NO_ROOM
from greenai.policies.reserve import forecast_rigid
from tests.policies.helpers import ORIGIN, H, view

FLAT_THEN_CLEAN = [300.0, 300.0, 100.0, 300.0, 300.0, 300.0]


def jobs(rows: list[tuple[float, float, float, int, bool]], origin_now: float = 0.0) -> JobBatch:
    """``(submit, duration, slack, gpus, flexible)`` rows, in seconds."""
    return JobBatch.columns(
        ORIGIN,
        ids=[f"j{i}" for i in range(len(rows))],
        submitted_at=[ORIGIN + timedelta(seconds=r[0]) for r in rows],
        deadline_at=[ORIGIN + timedelta(seconds=r[0] + r[1] + r[2]) for r in rows],
        duration_s=[r[1] for r in rows],
        interruptible=[False] * len(rows),
        gpus=[r[3] for r in rows],
        flexible=[r[4] for r in rows],
    )


def holds(rows: list[tuple[float, float, int, bool]]) -> Holds:
    return Holds(
        np.asarray([r[0] for r in rows], dtype=float),
        np.asarray([r[1] for r in rows], dtype=float),
        np.asarray([r[2] for r in rows], dtype=np.int64),
        np.asarray([r[3] for r in rows], dtype=np.bool_),
    )


def starts(plan: FleetPlan, now: float) -> np.ndarray:
    """Where each placed job's run begins in the plan (its earliest room for rigid work)."""
    return np.asarray(plan.cells.edges[np.maximum(plan.cell, 0)])


def test_flexible_jobs_share_the_clean_hour_and_the_rest_go_to_the_next_best() -> None:
    batch = jobs([(0, H, 4 * H, 2, True)] * 3)
    greedy = FleetSettings(price_rounds=0)
    plan = plan_fleet(batch, view(FLAT_THEN_CLEAN), 0.0, Capacity(4), greedy)
    assert sorted(starts(plan, 0.0).tolist()) == [0.0, 2 * H, 2 * H]  # two fit the clean hour
    assert not plan.late.any() and plan.free.min() >= 0
    # priced, the same intensities (the third job's 300-hour may differ: a tie in intensity)
    priced = plan_fleet(batch, view(FLAT_THEN_CLEAN), 0.0, Capacity(4), FleetSettings())
    assert sorted(priced.cost.tolist()) == [100.0, 100.0, 300.0] and not priced.late.any()


def test_a_short_job_backfills_before_a_later_reservation() -> None:
    # a rigid 4-GPU hold from 1h; a 2 h flexible job cannot start now, a 1 h one can
    capacity = Capacity(4, holds=holds([(H, 5 * H, 4, False)]))
    batch = jobs([(0, 2 * H, 0.5 * H, 4, True), (0, H, 0, 4, True)])
    plan = plan_fleet(batch, view([300.0] * 8), 0.0, capacity, FleetSettings())
    assert plan.cell.tolist()[1] == 0  # ends at 1 h, before the hold needs the slots
    assert plan.late.tolist() == [True, False]  # the long one has no room before its deadline
    assert starts(plan, 0.0)[0] == 5 * H  # it starts at the earliest room, reported late


def test_room_is_kept_for_rigid_work_learned_from_past_hours() -> None:
    # two past days: 3 rigid GPUs at 02:00 UTC, none otherwise
    hourly = np.zeros(48)
    hourly[[2, 26]] = 3.0
    first_hour = int(ORIGIN.timestamp() // 3600) - 48
    capacity = Capacity(4, rigid_demand=RigidDemand(first_hour, hourly))
    batch = jobs([(0, H, 4 * H, 2, True)])
    planned = Fleet().plan(batch, view(FLAT_THEN_CLEAN), 0.0, capacity)
    assert planned.starts.tolist() == [0.0]  # the clean hour 02:00 holds 3 of 4 for rigid work
    assert "3 GPUs of 4 kept for rigid work" in planned.reasons[0]
    assert "p90 of 48 past hours" in planned.reasons[0]


def test_the_flexible_fraction_keeps_the_largest_savings_and_runs_the_rest_now() -> None:
    clean = view([300.0, 300.0, 100.0, 250.0, 300.0, 300.0])
    batch = jobs([(0, H, 4 * H, 1, True), (0, H, 2.5 * H, 1, True)])
    # both save something; F = 0.5 of 2 GPU-h leaves room for one job's hour only
    fraction = FleetSettings(max_flexible_fraction=0.5)
    planned = Fleet(fraction).plan(batch, clean, 0.0, Capacity(10))
    assert planned.starts.tolist() == [2 * H, 0.0]
    assert planned.reasons[1].startswith("runs as rigid: at most 50% of 2 queued GPU-h")


def test_rigid_jobs_are_first_come_first_served() -> None:
    capacity = Capacity(2, holds=holds([(0, 2 * H, 2, True)]))
    batch = jobs([(0, H, 0, 2, False), (0, H, 0, 1, False)])
    planned = Fleet().plan(batch, view([300.0] * 6), 0.0, capacity)
    assert planned.starts.tolist() == [0.0, 0.0]  # both wait in the queue now, in submit order
    assert all("first come first served (room by" in r for r in planned.reasons)


def test_an_empty_batch_plans_nothing() -> None:
    empty = jobs([])
    assert len(Fleet().plan(empty, view([1.0]), 0.0, Capacity(1)).reasons) == 0


@st.composite
def instances(draw: st.DrawFn) -> tuple[JobBatch, Capacity, float, list[float]]:
    now = draw(st.sampled_from([0.0, 900.0, 1800.0]))
    values = draw(st.lists(st.floats(0, 500), min_size=12, max_size=12))
    count = draw(st.integers(1, 12))
    rows = [
        (
            draw(st.sampled_from([0.0, now])),
            float(draw(st.integers(1, 4 * 60)) * 60),
            float(draw(st.integers(0, 5 * 60)) * 60),
            draw(st.integers(1, 4)),
            draw(st.booleans()),
        )
        for _ in range(count)
    ]
    held = [
        (now, now + float(draw(st.integers(1, 6 * 60)) * 60), draw(st.integers(1, 3)), True)
        for _ in range(draw(st.integers(0, 3)))
    ]
    slots = draw(st.integers(4, 8))
    hourly = np.asarray(draw(st.lists(st.floats(0, 6), min_size=0, max_size=30)))
    demand = RigidDemand(int(ORIGIN.timestamp() // 3600) - hourly.size, hourly)
    return jobs(rows), Capacity(slots, holds=holds(held), rigid_demand=demand), now, values


@settings(max_examples=150, deadline=None)
@given(
    instances(),
    st.sampled_from(["saving", "deadline"]),
    st.sampled_from([0.3, 1.0]),
    st.sampled_from([0, 30]),
)
def test_a_fleet_plan_never_exceeds_capacity_and_reports_every_late_job(
    instance: tuple[JobBatch, Capacity, float, list[float]], order: str, fraction: float,
    rounds: int,
) -> None:  # fmt: skip
    batch, capacity, now, values = instance
    chosen = FleetSettings(max_flexible_fraction=fraction, order=order, price_rounds=rounds)
    plan = plan_fleet(batch, view(values, step=1800.0), now, capacity, chosen)
    begin = starts(plan, now)
    placed = plan.cell != NO_ROOM
    # every instant where a planned run holds GPUs stays within the slots
    assert capacity.holds is not None and capacity.slots is not None
    spans = [(b, b + r, g) for b, r, g in zip(begin[placed], batch.remaining[placed],
                                              batch.gpus[placed], strict=True)]  # fmt: skip
    held = list(zip(capacity.holds.start, capacity.holds.end, capacity.holds.gpus, strict=True))
    for moment, _, _ in spans:
        total = sum(g for a, b, g in spans + held if a <= moment < b)
        assert total <= capacity.slots
    # a job is reported late exactly when it has no room or would end after its deadline
    ends = np.where(placed, begin + batch.remaining, np.inf)
    assert plan.late.tolist() == (ends > batch.deadline + 1e-6).tolist()
    assert (begin[placed] >= np.maximum(batch.submit[placed], now) - 1e-6).all()
    planned = Fleet(chosen).plan(batch, view(values, step=1800.0), now, capacity)
    assert len(planned.reasons) == len(batch) and all(planned.reasons)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 50), min_size=0, max_size=24 * 20),
    st.integers(0, 23),
    st.sampled_from([None, 0.0, 0.5, 0.9, 1.0]),
)
def test_the_rigid_forecast_is_the_quantile_of_each_hour_of_day_over_the_last_days(
    values: list[float], first_hour: int, quantile: float | None
) -> None:
    hourly = np.asarray(values, dtype=float)
    forecast = forecast_rigid(RigidDemand(first_hour, hourly), quantile, 14)
    recent = hourly[-14 * 24 :]
    hour_of_day = (first_hour + hourly.size - recent.size + np.arange(recent.size)) % 24

    def summary(part: np.ndarray) -> float:
        return float(part.mean() if quantile is None else np.quantile(part, quantile))

    for hour in range(24):
        part = recent[hour_of_day == hour]
        expected = summary(part) if part.size else (summary(recent) if recent.size else 0.0)
        assert forecast.by_hour[hour] == pytest.approx(expected, abs=1e-9)
