"""Carbon budgets in the engine, frozen clock and fake executor: a job that would overrun its
project's budget is held until the period rolls over and then admitted, rejected when it could
no longer finish by its deadline after the roll-over, and measured emissions count."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.core.domain import EnergyReading, JobState
from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings
from greenai.daemon.wiring import store_budgets
from greenai.scheduling.admission import budget_usage, ledger_for
from greenai.storage.database import make_engine, upgrade
from greenai.storage.records import Event
from greenai.storage.store import Store
from tests.daemon.helpers import T0, new_job, run_summary
from tests.daemon.test_engine import Rig

DAY = timedelta(days=1)
ROLLOVER = T0 + timedelta(hours=12)  # T0 is noon; a new budget's periods start at midnight UTC


@pytest.fixture
def rig(sqlite_store: Store, tmp_path: Path) -> Rig:
    """Two GPU slots; project nlp may emit 150 g a day. A 1 kW, 1 h job in the clean windows
    (100 g/kWh) is estimated at 100 g: one fits, two do not."""
    made = Rig(sqlite_store, tmp_path, slots=(0, 1))
    made.store.put_budget("nlp", 150.0, DAY, T0)
    return made


def plan_of(rig: Rig, job_id: str) -> dict[str, object]:
    plan = rig.store.get(job_id).plan
    assert plan is not None
    return plan


def test_a_job_over_budget_is_held_until_the_roll_over_then_admitted(rig: Rig) -> None:
    first = rig.submit(project="nlp", power_kw=1.0)
    second = rig.submit(project="nlp", power_kw=1.0, deadline=T0 + timedelta(hours=20))
    other = rig.submit(project="vision", power_kw=50.0)  # no budget: planned as ever
    rig.tick()
    assert rig.store.get(first).planned_start == T0 + timedelta(hours=1)
    held = rig.store.get(second)
    assert (held.state, held.planned_start) == (JobState.SCHEDULED, ROLLOVER)
    reason = str(plan_of(rig, second)["reason"])
    assert plan_of(rig, second)["action"] == "defer"
    assert "budget of project nlp (0.150 kg per 1d)" in reason
    assert "0.100 kg used" in reason and "estimate of 0.100 kg" in reason
    assert "overrun it by 0.050 kg" in reason and "held until the period rolls over" in reason
    assert "budget" not in str(plan_of(rig, other)["reason"])
    logged = [json.loads(line) for line in rig.files.lines()]
    assert any(d["job_id"] == second and "overrun" in d["reason"] for d in logged)
    [usage] = budget_usage(rig.store, rig.store.budgets(), T0, None)
    assert (usage.measured_g, usage.estimated_g) == (0.0, pytest.approx(100.0))  # not the held

    rig.tick(60)  # the first starts in its window; the held one does not
    assert second not in rig.executor.running() and first in rig.executor.running()
    rig.clock.advance(3600)
    reading = EnergyReading(T0 + timedelta(hours=1), rig.clock.now(), gpu_kwh=1.0, meter="nvml")
    rig.executor.finish(first, 0, reading=reading)
    rig.tick()
    assert rig.store.get(second).planned_start == ROLLOVER  # 100 g measured: still held
    assert "0.100 kg used" in str(plan_of(rig, second)["reason"])
    # Once its only clean windows left are in the next period, it is planned there, and
    # admitted against that period's budget.
    rig.tick(10 * 60 - 1)
    admitted = rig.store.get(second)
    assert admitted.planned_start == ROLLOVER + timedelta(hours=1)
    assert "budget" not in str(plan_of(rig, second)["reason"])
    rig.tick(61)
    assert second in rig.executor.running()


def test_a_job_that_could_not_finish_after_the_roll_over_is_rejected(rig: Rig) -> None:
    rig.submit(project="nlp", power_kw=1.0)
    late = rig.submit(project="nlp", power_kw=1.0, deadline=T0 + timedelta(hours=10))
    huge = rig.submit(project="nlp", power_kw=10.0, deadline=T0 + timedelta(hours=40))
    rig.tick()
    for job_id in (late, huge):
        record = rig.store.get(job_id)
        assert (record.state, record.finished_at) == (JobState.REJECTED, T0)
        assert record.state.is_final
        event = rig.store.events(job_id)[-1]
        assert (event.action, event.to_state) == ("reject", JobState.REJECTED)
        assert event.payload["action"] == "reject"
    assert "after its latest start" in rig.store.events(late)[-1].reason
    assert "overrun it by 0.050 kg" in rig.store.events(late)[-1].reason
    assert "alone exceeds a whole period's budget" in rig.store.events(huge)[-1].reason
    rejected = [json.loads(line) for line in rig.files.lines() if '"reject"' in line]
    assert {d["job_id"] for d in rejected} == {late, huge}
    rig.tick(60)
    assert late not in rig.executor.running() and rig.state(late) is JobState.REJECTED


def test_measured_emissions_of_finished_runs_count_against_the_budget(rig: Rig) -> None:
    first = rig.submit(project="nlp", power_kw=1.0)
    rig.tick()
    rig.tick(60)
    rig.clock.advance(3600)
    # It drew more than declared: 1.2 kWh at 100 g/kWh, 120 g measured
    reading = EnergyReading(T0 + timedelta(hours=1), rig.clock.now(), gpu_kwh=1.2, meter="nvml")
    rig.executor.finish(first, 0, reading=reading)
    rig.tick()
    assert rig.state(first) is JobState.SUCCEEDED
    later = rig.submit(project="nlp", power_kw=0.5, deadline=T0 + timedelta(hours=20))
    rig.tick()
    record = rig.store.get(later)
    assert record.planned_start == ROLLOVER  # 120 g measured + 50 g estimated > 150 g
    reason = str(plan_of(rig, later)["reason"])
    assert "0.120 kg used" in reason and "overrun it by" in reason


def test_a_running_job_holds_its_estimate(rig: Rig) -> None:
    first = rig.submit(project="nlp", power_kw=1.0)
    rig.tick()
    rig.tick(60)
    assert rig.executor.running() == [first]
    second = rig.submit(project="nlp", power_kw=1.0, deadline=T0 + timedelta(hours=20))
    rig.tick()
    assert rig.store.get(second).planned_start == ROLLOVER
    assert "0.100 kg used" in str(plan_of(rig, second)["reason"])


def test_budgets_from_the_settings_are_stored_at_start_keeping_their_periods(
    sqlite_store: Store,
) -> None:
    env = {"GREENAI_BUDGETS": '{"nlp": {"kg": 50, "period": "7d"}}'}
    store_budgets(sqlite_store, load_settings(env=env), T0)
    [budget] = sqlite_store.budgets().values()
    assert (budget.project, budget.limit_g, budget.period) == ("nlp", 50_000.0, 7 * DAY)
    assert budget.start == T0 - timedelta(hours=12)  # midnight UTC
    env = {"GREENAI_BUDGETS": '{"nlp": {"kg": 20, "period": "7d"}}'}
    store_budgets(sqlite_store, load_settings(env=env), T0 + 3 * DAY)
    assert sqlite_store.budgets()["nlp"].limit_g == 20_000.0
    assert sqlite_store.budgets()["nlp"].start == budget.start


def test_a_budget_setting_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"budgets\.nlp\.period"):
        load_settings(env={"GREENAI_BUDGETS": '{"nlp": {"kg": 5, "period": "400d"}}'})


jobs_strategy = st.lists(
    st.tuples(
        st.integers(0, 20),  # submitted, half-hours after T0
        st.integers(1, 6),  # duration, half-hours
        st.integers(0, 48),  # slack, half-hours
        st.floats(0.1, 1.5),  # kW
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=15, deadline=None)
@given(
    limit=st.floats(300, 2000),
    period_h=st.sampled_from([4, 6, 12]),
    jobs=jobs_strategy,
)
def test_admitted_estimates_never_exceed_any_period_budget(
    tmp_path_factory: pytest.TempPathFactory,
    limit: float,
    period_h: int,
    jobs: list[tuple[int, int, int, float]],
) -> None:
    """Property (issue 10): after every tick, in every period, the measured emissions of
    finished runs plus the estimates of admitted running and scheduled jobs stay within the
    budget. Runs draw what they declared, so measured equals estimated."""
    folder = tmp_path_factory.mktemp("budget")
    engine = make_engine(f"sqlite:///{folder / 'greenai.db'}")
    upgrade(engine)
    try:
        rig = Rig(Store(engine), folder, slots=(0, 1, 2))
        rig.store.put_budget("nlp", limit, timedelta(hours=period_h), T0)
        budget = rig.store.budgets()["nlp"]
        pending = sorted(jobs)
        half = timedelta(minutes=30)
        for tick in range(72):
            now = T0 + tick * half
            while pending and pending[0][0] <= tick:
                _, length, slack, kw = pending.pop(0)
                rig.submit(
                    project="nlp", power_kw=kw, submitted_at=now, duration=length * half,
                    deadline=now + (length + slack) * half,
                )  # fmt: skip
            _finish_due(rig, now)
            rig.clock.advance((now - rig.clock.now()).total_seconds())
            rig.engine.tick(now)
            ledger = ledger_for(rig.store, {"nlp": budget}, now, None, scheduled=True)
            for begin, grams in ledger.periods("nlp"):
                assert grams <= limit + 1e-6, (tick, begin, grams)
    finally:
        engine.dispose()


def _finish_due(rig: Rig, now: datetime) -> None:
    """End every run that has run its declared time, drawing exactly its declared power."""
    for job_id in rig.executor.running():
        record = rig.store.get(job_id)
        started = rig.executor.run(job_id).started_at
        end = started + record.job.duration
        if end <= now:
            kwh = record.job.power_kw * record.job.duration.total_seconds() / 3600
            reading = EnergyReading(started, end, gpu_kwh=kwh, meter="nvml")
            rig.executor.finish(job_id, 0, finished_at=end, reading=reading)


def test_the_budget_tables_on_each_database(store: Store) -> None:
    """Budgets, measured grams and the jobs holding a share, on SQLite and PostgreSQL."""
    store.put_budget("nlp", 500.0, DAY, T0)
    store.put_budget("nlp", 400.0, 2 * DAY, T0 + DAY)  # changed: its start stays
    [budget] = store.budgets().values()
    assert (budget.limit_g, budget.period, budget.start) == (
        400.0,
        2 * DAY,
        T0 - timedelta(hours=12),
    )
    done, _ = store.submit(new_job(project="nlp"), T0)
    store.transition(done.id, JobState.QUEUED, JobState.SCHEDULED, Event(T0, "defer", "w"))
    store.claim(done.id, Event(T0, "dispatch", "go"), started_at=T0)
    run = run_summary(done.id, operational_g=70.0)
    store.finish_run(done.id, JobState.SUCCEEDED, Event(T0, "finish", "ok"), run)
    assert store.measured_g("nlp", T0, T0 + DAY) == pytest.approx(70.0)
    assert store.measured_g("nlp", T0 + DAY, T0 + 2 * DAY) == 0.0
    assert store.measured_g("vision", T0, T0 + DAY) == 0.0
    waiting, _ = store.submit(new_job(project="nlp", power_kw=2.0), T0)
    plan = {"forecast_intensity": 80.0, "reason": "best window"}
    store.transition(
        waiting.id, JobState.QUEUED, JobState.SCHEDULED, Event(T0, "defer", "w"),
        planned_start=T0 + timedelta(hours=2), plan=plan,
    )  # fmt: skip
    [holding] = store.holdings(["nlp"])
    assert (holding.job_id, holding.state, holding.power_kw) == (
        waiting.id,
        JobState.SCHEDULED,
        2.0,
    )
    assert (holding.intensity, holding.seconds_left, holding.reason) == (
        80.0,
        3600.0,
        "best window",
    )
    assert store.holdings([]) == [] and store.holdings(["vision"]) == []
