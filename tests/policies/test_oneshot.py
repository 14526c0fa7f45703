"""Threshold+deferral and best-window decisions for one waiting job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from greenai.core.domain import Action, Forecast, Signal
from greenai.core.errors import ConfigError
from greenai.policies.oneshot import Request, best_window_in, decide, next_check
from greenai.policies.view import ForecastView, JobTimes
from greenai.policies.window import plan_window

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
    )


def threshold_request(**changes: object) -> Request:
    fields: dict[str, object] = {
        "job_id": "j1",
        "submitted_at": T0,
        "threshold": 150.0,
        "defer_budget": timedelta(hours=2),
        "check_interval": timedelta(minutes=5),
    }
    fields.update(changes)
    return Request(**fields)  # type: ignore[arg-type]


def test_threshold_starts_when_intensity_is_at_the_threshold() -> None:
    decision = decide(threshold_request(), forecast([150, 300]), T0)
    assert decision.action is Action.START
    assert decision.intensity == 150
    assert "150 <= threshold 150" in decision.reason


def test_threshold_defers_and_names_the_first_clean_period() -> None:
    decision = decide(threshold_request(), forecast([212, 200, 140, 100]), T0)
    assert decision.action is Action.DEFER
    assert decision.reason.startswith("intensity 212 > threshold 150; next check in 300 s")
    assert "2023-05-04T13:00:00Z (140)" in decision.reason
    assert decision.planned_start == T0 + timedelta(hours=1)
    assert decision.forecast_min == 100
    assert decision.provider == "uk" and decision.region == "13"
    assert decision.signal is Signal.AVERAGE


def test_threshold_says_when_nothing_clean_is_expected_in_budget() -> None:
    decision = decide(threshold_request(), forecast([212, 200, 190, 180, 170, 10]), T0)
    assert decision.action is Action.DEFER
    assert "no period at or below the threshold is expected" in decision.reason


def test_threshold_runs_once_the_budget_is_spent() -> None:
    now = T0 + timedelta(hours=2)
    decision = decide(threshold_request(), forecast([300] * 6), now)
    assert decision.action is Action.START
    assert "deferral budget of 7200 s is spent" in decision.reason


def test_threshold_never_waits_past_the_budget() -> None:
    now = T0 + timedelta(hours=1, minutes=58)
    decision = decide(threshold_request(), forecast([300] * 6), now)
    assert decision.action is Action.DEFER
    assert "next check in 120 s" in decision.reason


def test_static_floor_runs_at_once_and_says_why() -> None:
    decision = decide(threshold_request(), forecast([500] * 4, static=True), T0)
    assert decision.action is Action.START
    assert "no better time to wait for" in decision.reason


def test_no_signal_runs_blind_and_says_so() -> None:
    decision = decide(threshold_request(), None, T0)
    assert decision.action is Action.START
    assert decision.provider is None
    assert "blind" in decision.reason


def test_window_defers_to_the_best_window_and_replans() -> None:
    request = Request(
        job_id="j2",
        submitted_at=T0,
        policy="window",
        duration=timedelta(hours=1),
        defer_budget=timedelta(hours=3),
    )
    values = [300, 250, 100, 80, 200, 400, 400, 400]
    first = decide(request, forecast(values), T0)
    assert first.action is Action.DEFER
    assert first.planned_start == T0 + timedelta(hours=1)
    assert first.forecast_intensity == pytest.approx(90)
    # At the planned start the same forecast says go.
    second = decide(request, forecast(values), T0 + timedelta(hours=1))
    assert second.action is Action.START


def test_window_starts_at_latest_start_even_if_dirty() -> None:
    request = Request(
        job_id="j3",
        submitted_at=T0,
        policy="window",
        duration=timedelta(hours=1),
        deadline=T0 + timedelta(hours=2),
    )
    decision = decide(request, forecast([400] * 8), T0 + timedelta(hours=1))
    assert decision.action is Action.START
    assert "latest start" in decision.reason


def test_best_window_integrates_partial_steps() -> None:
    # 45-minute job: the best start is 12:30, mean (100*30 + 50*15)/45.
    window = best_window_in(
        forecast([400, 100, 50, 400]), timedelta(minutes=45), T0, T0 + timedelta(hours=2)
    )
    assert window.start == T0 + timedelta(minutes=45)
    assert window.mean == pytest.approx((100 * 15 + 50 * 30) / 45)


def test_best_window_assumes_the_typical_value_beyond_the_forecast() -> None:
    # Two known half hours (100, 200), then the forecast's mean (150) is assumed.
    window = best_window_in(forecast([100, 200]), timedelta(hours=2), T0, T0 + timedelta(hours=5))
    assert window.start == T0
    assert window.mean == pytest.approx((100 + 200 + 150 + 150) / 4)


def test_best_window_is_the_fleet_window_policy() -> None:
    values = [300.0, 250.0, 100.0, 80.0, 200.0, 400.0]
    window = best_window_in(forecast(values), timedelta(hours=1), T0, T0 + timedelta(hours=2))
    view = ForecastView(0.0, 1800.0, np.asarray(values))
    planned = plan_window(JobTimes("j", 0.0, 3600.0, 3 * 3600.0), view, 0.0)
    assert window.start == T0 + timedelta(seconds=planned.start)
    assert window.mean == planned.expected


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"threshold": None}, "threshold"),
        ({"policy": "window"}, "duration"),
        ({"policy": "magic"}, "policy"),
        ({"duration": timedelta(0)}, "duration"),
    ],
)
def test_bad_requests_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        threshold_request(**changes)


def test_next_check_is_cut_short_by_the_expected_clean_period() -> None:
    request = threshold_request(check_interval=timedelta(minutes=45))
    decision = decide(request, forecast([212, 140, 300]), T0)
    assert "next check in 1800 s" in decision.reason
    assert next_check(request, T0, decision.planned_start) == timedelta(minutes=30)
