"""Carbon budgets in the engine, frozen clock and fake executor: a job that would overrun its
project's budget is held until the period rolls over and then admitted, rejected when it could
no longer finish by its deadline after the roll-over, and measured emissions count."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from greenai.core.domain import EnergyReading, JobState
from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings
from greenai.daemon.wiring import store_budgets
from greenai.storage.store import Store
from tests.daemon.helpers import T0
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
