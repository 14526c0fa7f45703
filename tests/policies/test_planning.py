"""``decide``: the one place a policy's plan becomes decisions, for `greenai run` and the
daemon alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from greenai.core.domain import Action, Forecast, Job, Signal
from greenai.policies.base import JobBatch
from greenai.policies.planning import axis_origin, decide
from greenai.policies.registry import get_policy

T0 = datetime(2023, 5, 4, 12, 0, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)


def forecast(values: list[float], *, static: bool = False, start: datetime = T0) -> Forecast:
    return Forecast(
        start=start,
        step=HALF_HOUR,
        values=tuple(values),
        signal=Signal.AVERAGE,
        source="uk:13",
        region="13",
        issued_at=start,
        static=static,
        warnings=("gap filled",),
    )


def job(duration: timedelta, deadline: timedelta, threshold: float | None = None) -> Job:
    return Job("j1", T0, duration, T0 + deadline, threshold=threshold)


def decide_one(policy: str, target: Job, seen: Forecast | None, now: datetime = T0):  # type: ignore[no-untyped-def]
    batch = JobBatch.of([target], axis_origin(seen, now))
    [decision] = decide(get_policy(policy), batch, seen, now)
    return decision


def test_threshold_starts_when_intensity_is_at_the_threshold() -> None:
    decision = decide_one(
        "threshold", job(timedelta(0), timedelta(hours=2), 150), forecast([150, 300])
    )
    assert decision.action is Action.START and decision.planned_start == T0
    assert decision.intensity == 150 and decision.threshold == 150
    assert decision.reason == "intensity 150 <= threshold 150"
    assert decision.forecast_intensity == 150  # a job of no length: the value at its start


def test_a_deferral_names_the_source_the_clean_period_and_the_lowest_value_ahead() -> None:
    target = job(timedelta(hours=1), timedelta(hours=3), 150)
    decision = decide_one("threshold", target, forecast([212, 200, 140, 100, 500, 300, 10]))
    assert decision.action is Action.DEFER
    assert "first period expected at or below: 2023-05-04T13:00:00Z (140)" in decision.reason
    assert decision.planned_start == T0 + timedelta(hours=1)
    assert decision.forecast_min == 100  # 10 comes after the deadline: not in reach
    assert decision.forecast_intensity == pytest.approx(120)  # the forecast over the run
    assert (decision.provider, decision.region, decision.signal) == ("uk", "13", Signal.AVERAGE)
    assert decision.warnings == ("gap filled",) and decision.deadline == T0 + timedelta(hours=3)


def test_window_defers_to_the_best_window_then_starts_there() -> None:
    target = job(timedelta(hours=1), timedelta(hours=4))
    values = [300, 250, 100, 80, 200, 400, 400, 400]
    first = decide_one("window", target, forecast(values))
    assert first.action is Action.DEFER and first.planned_start == T0 + timedelta(hours=1)
    assert first.forecast_intensity == pytest.approx(90)
    assert first.reason == "best window starts 2023-05-04T13:00:00Z (mean 90.0 vs 275.0 now)"
    second = decide_one("window", target, forecast(values), T0 + timedelta(hours=1))
    assert second.action is Action.START and second.planned_start == T0 + timedelta(hours=1)


def test_window_integrates_partial_steps_from_a_mid_step_now() -> None:
    # 45-minute job at 12:10: the best start is 12:45, mean (100*15 + 50*30)/45.
    now = T0 + timedelta(minutes=10)
    target = Job("j", now, timedelta(minutes=45), T0 + timedelta(hours=2, minutes=45))
    decision = decide_one("window", target, forecast([400, 100, 50, 400, 400, 400]), now)
    assert decision.planned_start == T0 + timedelta(minutes=45)
    assert decision.forecast_intensity == pytest.approx((100 * 15 + 50 * 30) / 45)


def test_window_assumes_the_typical_value_beyond_the_forecast() -> None:
    # Two known half hours (100, 200), then the forecast's mean (150) is assumed.
    decision = decide_one(
        "window", job(timedelta(hours=2), timedelta(hours=7)), forecast([100, 200])
    )
    assert decision.action is Action.START
    assert decision.forecast_intensity == pytest.approx((100 + 200 + 150 + 150) / 4)


def test_window_starts_at_latest_start_even_if_dirty() -> None:
    target = job(timedelta(hours=1), timedelta(hours=2))
    decision = decide_one("window", target, forecast([400] * 8), T0 + timedelta(hours=1))
    assert decision.action is Action.START and "latest start" in decision.reason
    assert decision.forecast_intensity == 400  # the policy did not look: the forecast did


@pytest.mark.parametrize("policy", ["threshold", "window", "now"])
def test_a_static_floor_or_no_signal_starts_at_once_and_says_why(policy: str) -> None:
    target = job(timedelta(hours=1), timedelta(hours=3), 150)
    static = decide_one(policy, target, forecast([500] * 4, static=True))
    assert static.action is Action.START and "no better time to wait for" in static.reason
    assert static.intensity == 500 and static.policy == policy
    blind = decide_one(policy, target, None)
    assert blind.action is Action.START and blind.provider is None and "blind" in blind.reason


def test_a_forecast_that_does_not_cover_now_is_no_plan() -> None:
    stale = forecast([100, 100], start=T0 - timedelta(hours=3))
    decision = decide_one("window", job(timedelta(hours=1), timedelta(hours=3)), stale)
    assert decision.action is Action.START and "does not cover" in decision.reason


def test_one_decision_per_job_of_a_batch_each_with_its_own_deadline() -> None:
    jobs = [
        Job("short", T0, timedelta(hours=1), T0 + timedelta(hours=1)),
        Job("long", T0, timedelta(hours=1), T0 + timedelta(hours=4)),
    ]
    values = [300, 250, 100, 80, 200, 400, 400, 400]
    decisions = decide(get_policy("window"), JobBatch.of(jobs, T0), forecast(values), T0)
    assert [d.job_id for d in decisions] == ["short", "long"]
    assert [d.action for d in decisions] == [Action.START, Action.DEFER]
    assert [d.forecast_min for d in decisions] == [250, 80]
    assert [d.deadline for d in decisions] == [job.deadline for job in jobs]


def test_the_axis_starts_at_the_step_holding_now() -> None:
    now = T0 + timedelta(minutes=40)
    assert axis_origin(forecast([1, 2, 3]), now) == T0 + timedelta(minutes=30)
    assert axis_origin(None, now) == now
    assert axis_origin(forecast([1], static=True), now) == now
