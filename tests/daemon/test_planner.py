"""The daemon's queue planner: groups by source and policy, rigid and interruptible jobs, and
the store rows it writes (payloads encoded once, by the one encoder)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from greenai.core.domain import Action, Forecast, Job, JobState
from greenai.evidence.decisions import encode_decision
from greenai.scheduling.planner import QueueDefaults, plan_queue
from greenai.storage.records import WaitingJobs
from tests.daemon.helpers import T0, forecast, waiting_columns

VALUES = [300.0, 300.0, 100.0, 100.0, 300.0, 50.0, 50.0, 300.0] * 2
DEFAULTS = QueueDefaults("uk", "window")


def job(job_id: str, hours: float, deadline_h: float, **fields: object) -> Job:
    return Job(job_id, T0, timedelta(hours=hours), T0 + timedelta(hours=deadline_h), **fields)  # type: ignore[arg-type]


def waiting(*jobs: Job, planned: dict[str, datetime] | None = None) -> WaitingJobs:
    starts = planned or {}
    states = [JobState.SCHEDULED if j.id in starts else JobState.QUEUED for j in jobs]
    return waiting_columns(jobs, states, [starts.get(j.id) for j in jobs])


def decisions(jobs: WaitingJobs, seen: Forecast | None, now: datetime = T0, **defaults: object):  # type: ignore[no-untyped-def]
    settings = QueueDefaults(**{"provider": "uk", "policy": "window", **defaults})  # type: ignore[arg-type]
    groups = plan_queue(jobs, lambda spec: seen, now, settings)
    return {d.job_id: d for group in groups for d in group.decisions}


def test_window_plan_never_before_now_nor_past_latest_start() -> None:
    planned = decisions(
        waiting(job("a", 1, 12), job("b", 1, 2.5), job("c", 1, 0.5)), forecast(VALUES)
    )
    assert planned["a"].planned_start == T0 + timedelta(hours=2.5)
    assert planned["a"].forecast_intensity == pytest.approx(50.0)
    assert planned["b"].planned_start == T0 + timedelta(hours=1)  # 50s are after its deadline
    assert planned["c"].planned_start == T0  # already late: start now
    assert planned["c"].action is Action.START and planned["a"].action is Action.DEFER


def test_threshold_takes_the_job_threshold_else_the_daemon_default() -> None:
    values = [300.0, 140.0, 300.0, 100.0, 100.0, 300.0] * 4
    jobs = waiting(job("own", 1, 12, policy="threshold", threshold=120.0), job("default", 1, 12))
    planned = decisions(jobs, forecast(values), policy="threshold", threshold=150.0)
    assert planned["own"].threshold == 120 and planned["default"].threshold == 150
    assert planned["default"].planned_start == T0 + timedelta(minutes=30)
    assert planned["own"].planned_start == T0 + timedelta(hours=1, minutes=30)
    assert {d.policy for d in planned.values()} == {"threshold"}


def test_rigid_jobs_start_now_and_interruptible_ones_run_whole_without_pausing() -> None:
    jobs = waiting(job("rigid", 1, 12, flexible=False), job("pausable", 1, 12, interruptible=True))
    planned = decisions(jobs, forecast(VALUES), policy="interruptible")
    assert (planned["rigid"].policy, planned["rigid"].action) == ("now", Action.START)
    assert planned["pausable"].reason.startswith("best window starts")  # planned whole


def test_each_provider_group_plans_with_its_own_forecast() -> None:
    clean_now = forecast([10.0] * 48)
    seen = {"uk": forecast(VALUES), "egrid:RFCE": clean_now}
    jobs = waiting(job("uk", 1, 12), job("other", 1, 12, provider="egrid:RFCE"))
    groups = plan_queue(jobs, seen.get, T0, DEFAULTS)
    assert [(g.provider, [d.job_id for d in g.decisions]) for g in groups] == [
        ("uk", ["uk"]),
        ("egrid:RFCE", ["other"]),
    ]
    assert [g.decisions[0].action for g in groups] == [Action.DEFER, Action.START]


def test_without_a_usable_forecast_jobs_start_now() -> None:
    flat = forecast([400.0] * 10, static=True)
    for given in (None, flat, forecast([1.0], start=T0 - timedelta(days=1))):
        planned = decisions(waiting(job("a", 1, 12)), given)
        assert planned["a"].action is Action.START and planned["a"].planned_start == T0


def test_only_moved_plans_become_rows_and_their_payloads_are_the_encoded_decisions() -> None:
    later = T0 + timedelta(hours=2.5)
    jobs = waiting(
        job("new", 1, 12),
        job("same", 1, 12),
        job("moved", 1, 12),
        planned={"same": later, "moved": T0 + timedelta(hours=7)},
    )
    [group] = plan_queue(jobs, lambda spec: forecast(VALUES), T0, DEFAULTS)
    moved = group.moved(timedelta(seconds=1))
    assert [group.decisions[i].job_id for i in moved] == ["new", "moved"]
    rows = group.rows(moved)
    assert rows.job_ids == ["new", "moved"] and rows.expected == ["queued", "scheduled"]
    assert rows.payloads == [encode_decision(group.decisions[i]) for i in moved]
    assert rows.starts == [later, later] and rows.actions == ["defer", "defer"]
