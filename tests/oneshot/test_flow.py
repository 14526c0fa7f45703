"""The `greenai run` flow with a frozen clock: what it was asked, when it looks again, what it
writes down, and that a policy that commits keeps its first plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from greenai.core.domain import (
    Action,
    Decision,
    EnergyReading,
    Forecast,
    IntensityPoint,
    RunRecord,
    Signal,
)
from greenai.core.errors import ConfigError, NoSignalError, ProviderError
from greenai.core.settings import load_settings
from greenai.oneshot.flow import (
    OneShot,
    OneShotDeps,
    decide_on_source,
    next_check,
    wait_for_start,
)
from greenai.oneshot.session import build_oneshot
from greenai.providers.fallback import ChainEntry, FallbackChain
from tests.fakes import FrozenClock

T0 = datetime(2023, 5, 4, 12, 0, tzinfo=UTC)


def forecast(values: list[float]) -> Forecast:
    return Forecast(T0, timedelta(minutes=30), tuple(values), Signal.AVERAGE, "uk:13", "13", T0)


class Source:
    def __init__(self, answer: Forecast | None) -> None:
        self.answer = answer

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast:
        if self.answer is None:
            raise ProviderError("uk", "down")
        return self.answer

    def history(self, start: datetime, end: datetime) -> Forecast:
        return self.forecast(start, end - start)


class Meter:
    name = "fake"

    def start(self) -> object:
        return object()

    def stop(self, token: object) -> EnergyReading:
        return EnergyReading(T0, T0 + timedelta(minutes=1), cpu_kwh=0.1, meter="fake")


def oneshot(**settings: Any) -> OneShot:
    loaded = load_settings(env={}, **{"defer_seconds": 7200, "check_interval": 300, **settings})
    return build_oneshot(loaded, T0, ["python", "train.py"])


def deps(answer: Forecast | None, clock: FrozenClock) -> tuple[OneShotDeps, list[Decision]]:
    logged: list[Decision] = []
    records: list[RunRecord] = []
    made = OneShotDeps(
        source=Source(answer),
        clock=clock,
        meter=Meter(),
        settings=load_settings(env={}),
        record_decision=logged.append,
        record_run=records.append,
    )
    return made, logged


def test_the_job_is_the_one_job_type_with_the_deferral_budget_as_its_deadline() -> None:
    asked = oneshot(threshold=150, duration="30m")
    job = asked.job
    assert (job.submitted_at, job.duration) == (T0, timedelta(minutes=30))
    assert job.deadline == T0 + timedelta(hours=2, minutes=30)
    assert job.latest_start == T0 + timedelta(hours=2)
    assert (job.name, job.command, job.policy, job.threshold) == (
        "python", ("python", "train.py"), "threshold", 150
    )  # fmt: skip
    assert asked.policy.name == "threshold" and asked.check_interval == timedelta(minutes=5)
    given = oneshot(policy="window", duration="1h", deadline="2023-05-04T20:00:00Z").job
    assert given.deadline == datetime(2023, 5, 4, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({}, "threshold"),
        ({"policy": "window"}, "duration"),
        ({"policy": "window-once"}, "duration"),
        ({"policy": "magic"}, "policy"),
        ({"policy": "oracle"}, "policy"),
        ({"threshold": 1, "duration": "0s"}, "duration"),
        ({"threshold": 1, "deadline": "2023-05-04T11:00:00Z"}, "deadline"),
    ],
)
def test_bad_requests_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        oneshot(**settings)


def test_a_deferral_says_when_it_looks_again_and_waits_exactly_that() -> None:
    clock = FrozenClock(T0)
    made, logged = deps(forecast([212, 200, 140, 100]), clock)
    decision, _ = wait_for_start(oneshot(threshold=150), made)
    assert decision.action is Action.START and decision.at == T0 + timedelta(hours=1)
    first = logged[0]
    assert first.action is Action.DEFER
    assert first.reason.startswith("intensity 212 > threshold 150; first period expected")
    assert first.reason.endswith("; next check in 300 s")
    assert clock.waits[:2] == [300.0, 300.0]
    assert "next check" not in decision.reason  # the start decision is the policy's own


def test_what_the_meters_cannot_measure_is_in_the_start_decisions_warnings() -> None:
    """Issue 9 #3: "GPU energy not measured" reached the row but not the decision log."""
    clock = FrozenClock(T0)
    made, logged = deps(forecast([212, 200, 140, 100]), clock)
    made.meter_notes = ("GPU energy not measured: nvml: cannot initialise NVML",)
    decision, _ = wait_for_start(oneshot(threshold=150), made)
    assert decision.action is Action.START and logged[-1] == decision
    assert decision.warnings[-1] == "GPU energy not measured: nvml: cannot initialise NVML"
    assert all(not d.warnings for d in logged[:-1])  # deferrals run nothing: nothing to say


def test_next_check_is_cut_short_by_the_planned_and_the_latest_start() -> None:
    asked = oneshot(threshold=150, check_interval=2700)
    assert next_check(asked, T0, T0 + timedelta(minutes=30)) == timedelta(minutes=30)
    late = T0 + timedelta(hours=1, minutes=58)
    assert next_check(asked, late, None) == timedelta(minutes=2)
    assert next_check(asked, T0 + timedelta(hours=3), None) == timedelta(seconds=1)


def test_threshold_runs_once_the_budget_is_spent() -> None:
    clock = FrozenClock(T0)
    made, _ = deps(forecast([300] * 8), clock)
    decision, _ = wait_for_start(oneshot(threshold=150), made)
    assert decision.at == T0 + timedelta(hours=2) and "slack is spent" in decision.reason
    assert sum(clock.waits) == 7200


def test_a_committing_policy_keeps_its_first_plan_even_when_the_forecast_moves() -> None:
    clock = FrozenClock(T0)
    made, logged = deps(forecast([300, 250, 100, 80, 200, 400, 400, 400]), clock)
    asked = oneshot(policy="window-once", duration="1h")
    source = made.source
    assert isinstance(source, Source)

    def change_the_forecast(*_: object) -> None:
        source.answer = forecast([10] * 8)  # now would be best: a re-planner would start

    made.on_defer = change_the_forecast
    decision, _ = wait_for_start(asked, made)
    assert decision.at == T0 + timedelta(hours=1)
    assert decision.reason.startswith("planned start reached (planned once")
    *checks, started = logged
    assert [d.at for d in checks] == [T0 + timedelta(minutes=5 * k) for k in range(12)]
    assert {d.planned_start for d in checks} == {T0 + timedelta(hours=1)}
    assert started.action is Action.START and all(d.action is Action.DEFER for d in checks)


def test_a_cancelled_wait_expires_and_says_why() -> None:
    clock = FrozenClock(T0)
    made, logged = deps(forecast([300] * 8), clock)
    made.cancel.set()
    made.cancel_reason.append("interrupted by SIGTERM")
    decision, _ = wait_for_start(oneshot(threshold=150), made)
    assert decision.action is Action.EXPIRE
    assert decision.reason == "interrupted by SIGTERM while deferring: the command was not started"
    assert logged[-1] == decision


def test_no_signal_runs_blind_unless_a_signal_is_required(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    made, _ = deps(None, clock)
    decision, seen = wait_for_start(oneshot(threshold=150), made)
    assert decision.action is Action.START and "blind" in decision.reason and seen is None


class Answering:
    """A provider that answers ``values`` in ``signal``, or fails when ``values`` is None."""

    def __init__(self, name: str, signal: Signal, values: list[float] | None) -> None:
        self.name, self.signal, self.values = name, signal, values

    def forecast(self, region: str, now: datetime, horizon: timedelta) -> Forecast:
        if self.values is None:
            raise ProviderError(self.name, "history and forecast down")
        step = timedelta(minutes=30)
        return Forecast(T0, step, tuple(self.values), self.signal, self.name, region, T0)

    def current(self, region: str, now: datetime) -> IntensityPoint:
        return self.forecast(region, now, timedelta(0)).points[0]

    def history(self, region: str, start: datetime, end: datetime) -> Forecast:
        return self.forecast(region, start, end - start)


def stand_in_chain() -> FallbackChain:
    """WattTime (marginal) down, eGRID-like average standing in at 100 g/kWh."""
    return FallbackChain(
        [
            ChainEntry(Answering("watttime", Signal.MARGINAL, None), "CAISO_NORTH"),
            ChainEntry(Answering("avg", Signal.AVERAGE, [100.0] * 8), "CAMX"),
        ]
    )


def test_a_threshold_is_not_compared_with_a_figure_of_the_other_signal() -> None:
    made, _ = deps(None, FrozenClock(T0))
    made.source = stand_in_chain()
    decision = decide_on_source(oneshot(threshold=150), made, T0)
    # 100 average is not "<= 150 marginal": no usable figure, decided as with none
    assert decision.reason.startswith(
        "avg answered in average values and the threshold 150 g/kWh is marginal: not compared"
    )
    assert "no intensity forecast available" in decision.reason
    assert decision.intensity is None and decision.signal is None
    assert any("stood in for watttime:CAISO_NORTH" in w for w in decision.warnings)


def test_a_figure_of_the_other_signal_is_no_signal_when_one_is_required() -> None:
    made, _ = deps(None, FrozenClock(T0))
    made.source, made.require_signal = stand_in_chain(), True
    with pytest.raises(NoSignalError, match="not compared"):
        decide_on_source(oneshot(threshold=150), made, T0)


def test_a_stand_in_of_the_same_signal_is_compared() -> None:
    made, _ = deps(None, FrozenClock(T0))
    made.source = FallbackChain(
        [
            ChainEntry(Answering("uk", Signal.AVERAGE, None), "13"),
            ChainEntry(Answering("avg", Signal.AVERAGE, [100.0] * 8), "CAMX"),
        ]
    )
    decision = decide_on_source(oneshot(threshold=150), made, T0)
    assert decision.action is Action.START and decision.intensity == 100.0
