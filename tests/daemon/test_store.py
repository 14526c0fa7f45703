"""The store on SQLite and on a real PostgreSQL: submissions, reads, compare-and-set."""

from __future__ import annotations

import threading
from dataclasses import astuple
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from greenai.core.domain import JobState
from greenai.core.errors import InvalidTransition, NotFound
from greenai.scheduling.planner import plan_waiting
from greenai.storage.models import UTCDateTime, stored_utc
from greenai.storage.records import Event, RunSummary, WaitingJobs, decision_payload
from greenai.storage.store import PlanUpdate, Store
from tests.daemon.helpers import T0, forecast, new_job


def test_submit_then_get_round_trips_every_field(store: Store) -> None:
    job, created = store.submit(
        new_job(
            argv=("python", "train.py", "--lr", "0.1"),
            gpus=2,
            project="nlp",
            env={"A": "1"},
            cwd="/tmp",
            threshold=120.0,
            policy="window",
        ),
        now=T0,
    )
    got = store.get(job.id)
    assert created
    assert got == job
    assert got.command == ("python", "train.py", "--lr", "0.1")
    assert got.state is JobState.QUEUED
    assert got.submitted_at == T0 and got.submitted_at.tzinfo is not None
    assert got.duration == timedelta(hours=1)
    assert (got.gpus, got.project, got.env, got.attempts) == (2, "nlp", {"A": "1"}, 0)


def test_same_idempotency_key_never_creates_two_jobs(store: Store) -> None:
    first, created_first = store.submit(new_job(idempotency_key="k-1"))
    second, created_second = store.submit(new_job(name="other", idempotency_key="k-1"))
    assert (created_first, created_second) == (True, False)
    assert second.id == first.id
    assert store.list_jobs()[1] == 1


def test_unknown_id_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(NotFound):
        store.transition("nope", JobState.QUEUED, JobState.CANCELLED, Event(T0, "cancel", "x"))


def test_transition_is_compare_and_set_and_records_its_event(store: Store) -> None:
    job, _ = store.submit(new_job())
    moved = store.transition(
        job.id,
        JobState.QUEUED,
        JobState.SCHEDULED,
        Event(T0, "defer", "later"),
        planned_start=T0 + timedelta(hours=2),
    )
    assert moved.state is JobState.SCHEDULED
    assert moved.planned_start == T0 + timedelta(hours=2)
    with pytest.raises(InvalidTransition, match="is scheduled, not queued"):
        store.transition(job.id, JobState.QUEUED, JobState.RUNNING, Event(T0, "x", "y"))
    events = store.events(job.id)
    assert [(e.action, e.from_state, e.to_state) for e in events] == [
        ("defer", JobState.QUEUED, JobState.SCHEDULED)
    ]
    assert store.get(job.id).state is JobState.SCHEDULED


def test_only_one_of_many_concurrent_claims_wins(store: Store) -> None:
    job, _ = store.submit(new_job())
    winners: list[int] = []
    losers: list[int] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        try:
            store.transition(job.id, JobState.QUEUED, JobState.RUNNING, Event(T0, "go", str(n)))
            winners.append(n)
        except InvalidTransition:
            losers.append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(losers) == 7
    assert len(store.events(job.id)) == 1


def test_list_filters_by_state_and_project_and_pages(store: Store) -> None:
    ids = [
        store.submit(new_job(submitted_at=T0 + timedelta(minutes=i), project=p))[0].id
        for i, p in enumerate(["a", "b", "a", "a"])
    ]
    store.transition(ids[0], JobState.QUEUED, JobState.CANCELLED, Event(T0, "cancel", "x"))
    page, total = store.list_jobs(project="a", limit=1, offset=1)
    assert total == 3 and [j.id for j in page] == [ids[2]]  # newest first
    queued, count = store.list_jobs(states=[JobState.QUEUED], project="a")
    assert count == 2 and {j.id for j in queued} == {ids[2], ids[3]}
    assert store.count_by_state()[JobState.CANCELLED] == 1


def test_set_plans_skips_jobs_that_moved_meanwhile(store: Store) -> None:
    a, _ = store.submit(new_job())
    b, _ = store.submit(new_job())
    store.transition(b.id, JobState.QUEUED, JobState.CANCELLED, Event(T0, "cancel", "user"))
    start = T0 + timedelta(hours=3)
    applied = store.set_plans(
        [PlanUpdate(j.id, JobState.QUEUED, start, Event(T0, "defer", "w")) for j in (a, b)]
    )
    assert applied == 1
    assert store.get(a.id).state is JobState.SCHEDULED
    assert store.get(a.id).planned_start == start
    assert store.get(b.id).state is JobState.CANCELLED
    assert [e.action for e in store.events(b.id)] == ["cancel"]
    assert store.upcoming()[0].id == a.id


def test_cancel_running_job_only_flags_it(store: Store) -> None:
    job, _ = store.submit(new_job())
    store.transition(job.id, JobState.QUEUED, JobState.RUNNING, Event(T0, "go", "x"))
    flagged = store.request_cancel(job.id, T0)
    assert flagged.state is JobState.RUNNING and flagged.cancel_requested
    store.transition(job.id, JobState.RUNNING, JobState.CANCELLED, Event(T0, "cancel", "done"))
    with pytest.raises(InvalidTransition):
        store.request_cancel(job.id, T0)


def test_busy_gpus_and_run_totals(store: Store) -> None:
    job, _ = store.submit(new_job(gpus=2))
    store.transition(
        job.id, JobState.QUEUED, JobState.RUNNING, Event(T0, "go", "x"), gpu_ids=[1, 3]
    )
    assert store.busy_gpu_ids() == {1, 3}
    store.record_run(
        RunSummary(
            "r1",
            job.id,
            1,
            T0,
            T0 + timedelta(hours=1),
            0,
            2.0,
            "fake",
            operational_g=300.0,
            saved_g=40.0,
            delay_s=60.0,
        )
    )
    totals = store.totals()
    assert (totals.energy_kwh, totals.operational_g, totals.saved_g, totals.runs) == (
        2.0,
        300.0,
        40.0,
        1,
    )
    assert store.runs(job.id)[0].id == "r1"


def test_the_plan_read_and_write_agree_with_the_record_paths(store: Store) -> None:
    deadlines = [T0 + timedelta(hours=5), T0 + timedelta(hours=7, microseconds=250_001)]
    *_, last = (store.submit(new_job(deadline=d, threshold=90.0))[0] for d in deadlines)
    store.transition(last.id, JobState.QUEUED, JobState.SCHEDULED, Event(T0, "defer", "x"))
    waiting = store.waiting_for_plan()
    records = WaitingJobs.of(store.jobs_in([JobState.QUEUED, JobState.SCHEDULED]))
    assert sorted(zip(*astuple(waiting), strict=True)) == sorted(
        zip(*astuple(records), strict=True)
    )
    plan = plan_waiting(waiting, forecast([300.0, 100.0, 50.0, 300.0] * 6), T0)
    assert store.set_plans(plan.rows(plan.moved(timedelta(seconds=1)))) == 2
    for i, job_id in enumerate(waiting.ids):
        (*_, event) = store.events(job_id)
        decision = plan.decision(i)
        assert event.payload == decision_payload(decision)
        assert (event.at, event.action, event.reason) == (T0, str(decision.action), decision.reason)
        assert store.get(job_id).planned_start == decision.planned_start
    replanned = store.waiting_for_plan()
    records = WaitingJobs.of(store.jobs_in([JobState.SCHEDULED]))
    assert sorted(zip(*astuple(replanned), strict=True)) == sorted(
        zip(*astuple(records), strict=True)
    )


@pytest.mark.parametrize(
    "text",
    ["2023-05-04 12:00:00.000000", "2023-05-04 12:00:00.250001", "2023-05-04", "2023-05-04T12:00Z"],
)
def test_stored_text_reads_as_utc_like_the_column_type(text: str) -> None:
    column = UTCDateTime().process_result_value(datetime.fromisoformat(text), sqlite_dialect())
    assert stored_utc(text) == column and stored_utc(text).tzinfo is UTC  # type: ignore[union-attr]
