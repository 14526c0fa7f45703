"""The store on SQLite and on a real PostgreSQL: submissions, reads, compare-and-set
transitions, plans with their decisions, runs with their evidence."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import astuple, replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.exc import IntegrityError

from greenai.core.domain import Action, Decision, JobState, OnDeadline, Signal
from greenai.core.errors import InvalidTransition, NotFound
from greenai.evidence.decisions import decode_decision, encode_decision
from greenai.scheduling.planner import QueueDefaults, plan_queue
from greenai.storage.models import UTCDateTime, stored_utc
from greenai.storage.records import Event, JobRecord, PlanRows, Submission, WaitingJobs
from greenai.storage.store import Store
from tests.daemon.helpers import (
    T0,
    every_field_job,
    forecast,
    job,
    new_job,
    run_summary,
    waiting_columns,
)

LATER = T0 + timedelta(hours=3)


def decision(job_id: str, start: datetime = LATER, **fields: object) -> Decision:
    values: dict[str, object] = {
        "policy": "window",
        "action": Action.DEFER,
        "reason": "a cleaner window comes later",
        "intensity": 300.0,
        "forecast_min": 100.0,
        "planned_start": start,
        "deadline": T0 + timedelta(hours=12),
        "provider": "fake",
        "region": "13",
        "signal": Signal.AVERAGE,
        **fields,
    }
    return Decision(T0, job_id, **values)  # type: ignore[arg-type]


def plan_rows(*planned: tuple[str, JobState, Decision]) -> PlanRows:
    """The rows ``set_plans`` takes, as the planner builds them: one encoded payload each."""
    return PlanRows(
        job_ids=[job_id for job_id, _, _ in planned],
        expected=[str(state) for _, state, _ in planned],
        starts=[d.planned_start or d.at for _, _, d in planned],
        ats=[d.at for _, _, d in planned],
        actions=[str(d.action) for _, _, d in planned],
        reasons=[d.reason for _, _, d in planned],
        payloads=[encode_decision(d) for _, _, d in planned],
    )


def columns_of(records: Sequence[JobRecord]) -> WaitingJobs:
    """What ``waiting_for_plan`` should read, built from the full records."""
    jobs = [r.job for r in records]
    return waiting_columns(
        jobs,
        [r.state for r in records],
        [r.planned_start for r in records],
        [r.updated_at for r in records],
    )


def by_job(columns: WaitingJobs) -> list[tuple[object, ...]]:
    return sorted(zip(*astuple(columns), strict=True))


HOST = "node-1"


def start_running(store: Store, job_id: str, **changes: object) -> JobRecord:
    """Dispatch a queued job as the engine does: scheduled, then claimed with its GPUs."""
    store.transition(job_id, JobState.QUEUED, JobState.SCHEDULED, Event(T0, "defer", "plan"))
    return store.claim(job_id, Event(T0, "dispatch", "go"), **{"host": HOST, **changes})


# -- submissions -----------------------------------------------------------------------------


def test_every_field_of_the_job_round_trips_exactly(store: Store) -> None:
    submitted = every_field_job(
        submitted_at=T0 + timedelta(microseconds=250_001),
        duration=timedelta(hours=1, microseconds=250_001),
        deadline=T0 + timedelta(hours=7, microseconds=1),
    )
    record, created = store.submit(Submission(submitted), T0)
    got = store.get(submitted.id)
    assert created
    assert got == record
    assert got.job == submitted
    assert got.job.submitted_at.tzinfo is not None and got.job.deadline.tzinfo is not None
    assert (got.state, got.attempts, got.updated_at) == (JobState.QUEUED, 0, T0)
    assert (got.planned_start, got.plan, got.handle, got.gpu_ids) == (None, None, None, ())


def test_a_job_of_defaults_round_trips_with_its_defaults(store: Store) -> None:
    submission = new_job()
    store.submit(submission, T0)
    got = store.get(submission.job.id).job
    assert got == submission.job
    assert (got.flexible, got.power_kw, got.env, got.cwd, got.policy) == (
        True,
        0.0,
        None,
        None,
        None,
    )
    assert got.on_deadline is OnDeadline.RUN


def test_same_idempotency_key_never_creates_two_jobs(store: Store) -> None:
    first, created_first = store.submit(new_job(idempotency_key="k-1"))
    second, created_second = store.submit(new_job(name="other", idempotency_key="k-1"))
    assert (created_first, created_second) == (True, False)
    assert second == first
    assert second.idempotency_key == "k-1"
    assert store.list_jobs()[1] == 1


def test_idempotency_keys_hold_inside_one_batch_and_across_batches(store: Store) -> None:
    earlier, _ = store.submit(new_job(idempotency_key="before"), T0)
    answered = store.submit_many(
        [
            (new_job(idempotency_key="k"), T0),
            (new_job(name="retry", idempotency_key="k"), T0),
            (new_job(), T0),
            (new_job(idempotency_key="before"), T0),
        ]
    )
    (first, made_first), (retry, made_retry), (plain, made_plain), (again, made_again) = answered
    assert (made_first, made_retry, made_plain, made_again) == (True, False, True, False)
    assert retry.id == first.id and retry.job.name == "train"
    assert again.id == earlier.id
    assert store.list_jobs()[1] == 3
    assert store.get(first.id) == first and store.get(plain.id) == plain


def test_submit_many_of_nothing_stores_nothing(store: Store) -> None:
    assert store.submit_many([]) == []
    assert store.list_jobs() == ([], 0)


def test_unknown_id_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(NotFound):
        store.transition("nope", JobState.QUEUED, JobState.CANCELLED, Event(T0, "cancel", "x"))
    with pytest.raises(NotFound):
        store.request_cancel("nope", T0)
    with pytest.raises(NotFound):
        store.finish_run("nope", JobState.SUCCEEDED, Event(T0, "finish", "x"), run_summary("nope"))
    assert store.runs("nope") == []


# -- transitions -----------------------------------------------------------------------------


def test_transition_is_compare_and_set_and_records_its_event(store: Store) -> None:
    record, _ = store.submit(new_job())
    moved = store.transition(
        record.id,
        JobState.QUEUED,
        JobState.SCHEDULED,
        Event(T0 + timedelta(minutes=1), "defer", "later"),
        planned_start=T0 + timedelta(hours=2),
    )
    assert moved.state is JobState.SCHEDULED
    assert moved.planned_start == T0 + timedelta(hours=2)
    assert moved.updated_at == T0 + timedelta(minutes=1)
    assert moved.job == record.job
    with pytest.raises(InvalidTransition, match="is scheduled, not queued"):
        store.transition(record.id, JobState.QUEUED, JobState.RUNNING, Event(T0, "x", "y"))
    events = store.events(record.id)
    assert [(e.action, e.reason, e.from_state, e.to_state) for e in events] == [
        ("defer", "later", JobState.QUEUED, JobState.SCHEDULED)
    ]
    assert events[0].payload == {}
    assert store.get(record.id) == moved


def test_a_transition_accepts_any_of_several_expected_states(store: Store) -> None:
    record, _ = store.submit(new_job())
    waiting = (JobState.QUEUED, JobState.SCHEDULED)
    cancelled = store.transition(record.id, waiting, JobState.CANCELLED, Event(T0, "cancel", "x"))
    assert cancelled.state is JobState.CANCELLED
    with pytest.raises(InvalidTransition, match="is cancelled, not queued or scheduled"):
        store.transition(record.id, waiting, JobState.RUNNING, Event(T0, "go", "x"))
    assert len(store.events(record.id)) == 1


def test_only_one_of_many_concurrent_claims_wins(store: Store) -> None:
    record, _ = store.submit(new_job())
    winners: list[int] = []
    losers: list[int] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        try:
            store.transition(record.id, JobState.QUEUED, JobState.RUNNING, Event(T0, "go", str(n)))
            winners.append(n)
        except InvalidTransition:
            losers.append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(losers) == 7
    [event] = store.events(record.id)
    assert event.reason == str(winners[0])


def test_a_running_job_keeps_its_handle_and_gpus(store: Store) -> None:
    record, _ = store.submit(new_job(gpus=2))
    handle = {"executor": "local", "job_id": record.id, "attempt": 1, "ref": {"state_dir": "x"}}
    running = start_running(store, record.id, gpu_ids=[1, 3], handle=handle, attempts=1)
    assert (running.gpu_ids, running.handle, running.attempts) == ((1, 3), handle, 1)
    moved = {**handle, "ref": {"state_dir": "y"}}
    store.update_running(record.id, handle=moved)
    assert store.get(record.id).handle == moved
    assert store.busy_gpu_ids(HOST) == {1, 3}


def test_update_running_leaves_jobs_that_are_not_running_alone(store: Store) -> None:
    record, _ = store.submit(new_job())
    store.update_running(record.id, handle={"executor": "local"})
    assert store.get(record.id) == record


def test_add_event_records_an_event_without_a_state_change(store: Store) -> None:
    record, _ = store.submit(new_job())
    running = start_running(store, record.id)
    payload = json.dumps({"note": "re-attached", "pid": 42})
    store.add_event(record.id, Event(T0 + timedelta(hours=1), "reattach", "after restart", payload))
    *_, event = store.events(record.id)
    assert (event.action, event.reason, event.from_state, event.to_state) == (
        "reattach",
        "after restart",
        None,
        None,
    )
    assert event.at == T0 + timedelta(hours=1)
    assert event.payload == {"note": "re-attached", "pid": 42}
    assert store.get(record.id) == running  # not even updated_at moved
    assert store.count_by_action()["reattach"] == 1


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
    assert store.count_by_state()[JobState.RUNNING] == 0


def test_cancel_of_a_waiting_job_cancels_it(store: Store) -> None:
    record, _ = store.submit(new_job())
    cancelled = store.request_cancel(record.id, T0)
    assert cancelled.state is JobState.CANCELLED and not cancelled.cancel_requested
    [event] = store.events(record.id)
    assert (event.action, event.from_state, event.to_state) == (
        "cancel",
        JobState.QUEUED,
        JobState.CANCELLED,
    )


def test_cancel_of_a_running_job_only_flags_it(store: Store) -> None:
    record, _ = store.submit(new_job())
    start_running(store, record.id)
    flagged = store.request_cancel(record.id, T0 + timedelta(minutes=5))
    assert flagged.state is JobState.RUNNING and flagged.cancel_requested
    assert flagged.updated_at == T0 + timedelta(minutes=5)
    *_, event = store.events(record.id)
    assert (event.action, event.from_state, event.to_state) == ("cancel", None, None)
    store.transition(record.id, JobState.RUNNING, JobState.CANCELLED, Event(T0, "cancel", "done"))
    with pytest.raises(InvalidTransition):
        store.request_cancel(record.id, T0)


# -- plans -----------------------------------------------------------------------------------


def test_set_plans_stores_the_payload_as_the_event_and_as_the_plan(store: Store) -> None:
    record, _ = store.submit(new_job())
    planned = decision(
        record.id,
        reason="wait for 50 gCO₂/kWh — naïve grid, 清洁",
        intensity=float("nan"),  # the encoder writes null
        warnings=("fallback: ünïcode source",),
        forecast_intensity=62.5,
    )
    rows = plan_rows((record.id, JobState.QUEUED, planned))
    assert len(store.set_plans(rows)) == 1
    expected = json.loads(rows.payloads[0])
    assert expected["intensity"] is None and "清洁" in expected["reason"]
    [event] = store.events(record.id)
    assert event.payload == expected
    assert (event.at, event.action, event.reason) == (T0, "defer", planned.reason)
    assert (event.from_state, event.to_state) == (JobState.QUEUED, JobState.SCHEDULED)
    got = store.get(record.id)
    assert got.plan == expected
    assert (got.state, got.planned_start, got.updated_at) == (JobState.SCHEDULED, LATER, T0)
    assert got.plan is not None and decode_decision(got.plan) == replace(planned, intensity=None)


def test_a_new_plan_replaces_the_current_one(store: Store) -> None:
    record, _ = store.submit(new_job())
    store.set_plans(plan_rows((record.id, JobState.QUEUED, decision(record.id))))
    sooner = decision(record.id, T0 + timedelta(hours=1), reason="cleaner sooner")
    assert len(store.set_plans(plan_rows((record.id, JobState.SCHEDULED, sooner)))) == 1
    got = store.get(record.id)
    assert got.planned_start == T0 + timedelta(hours=1)
    assert got.plan == json.loads(encode_decision(sooner))
    assert [e.reason for e in store.events(record.id)] == [
        "a cleaner window comes later",
        "cleaner sooner",
    ]


def test_set_plans_skips_jobs_that_moved_meanwhile(store: Store) -> None:
    a, _ = store.submit(new_job())
    b, _ = store.submit(new_job())
    c, _ = store.submit(new_job())
    store.transition(b.id, JobState.QUEUED, JobState.CANCELLED, Event(T0, "cancel", "user"))
    store.transition(c.id, JobState.QUEUED, JobState.RUNNING, Event(T0, "dispatch", "go"))
    rows = plan_rows(*((j.id, JobState.QUEUED, decision(j.id)) for j in (a, b, c)))
    assert len(store.set_plans(rows)) == 1
    planned = store.get(a.id)
    assert (planned.state, planned.planned_start) == (JobState.SCHEDULED, LATER)
    assert planned.plan == json.loads(rows.payloads[0])
    assert store.get(b.id).state is JobState.CANCELLED
    assert store.get(c.id).state is JobState.RUNNING
    assert store.get(b.id).plan is None and store.get(c.id).plan is None
    assert [e.action for e in store.events(b.id)] == ["cancel"]
    assert [e.action for e in store.events(c.id)] == ["dispatch"]
    assert [j.id for j in store.upcoming()] == [a.id]


def test_set_plans_skips_a_job_another_planner_scheduled_meanwhile(store: Store) -> None:
    a, _ = store.submit(new_job())
    c, _ = store.submit(new_job())
    elsewhere = T0 + timedelta(hours=5)
    other = Event(T0, "defer", "another replica's plan")
    store.transition(c.id, JobState.QUEUED, JobState.SCHEDULED, other, planned_start=elsewhere)
    rows = plan_rows(*((j.id, JobState.QUEUED, decision(j.id)) for j in (a, c)))
    applied = store.set_plans(rows)
    assert [e.reason for e in store.events(c.id)] == ["another replica's plan"]
    assert (store.get(c.id).planned_start, store.get(c.id).plan) == (elsewhere, None)
    assert applied.job_ids == [a.id]


def test_set_plans_of_no_rows_does_nothing(store: Store) -> None:
    assert len(store.set_plans(plan_rows())) == 0


def test_waiting_for_plan_names_its_columns(store: Store) -> None:
    rigid = job(
        "rigid",
        duration=timedelta(minutes=90, microseconds=250_001),
        gpus=3,
        flexible=False,
        interruptible=True,
        policy="threshold",
        threshold=99.5,
        provider="egrid:RFCE",
    )
    store.submit(Submission(rigid), T0)
    plain, _ = store.submit(new_job(job_id="plain"), T0)
    store.set_plans(plan_rows((plain.id, JobState.QUEUED, decision(plain.id))))
    for gone in ("running", "cancelled"):
        store.submit(new_job(job_id=gone), T0)
    start_running(store, "running")
    store.request_cancel("cancelled", T0)
    waiting = store.waiting_for_plan()
    assert len(waiting) == 2
    by_id = {job_id: i for i, job_id in enumerate(waiting.ids)}
    r, p = by_id["rigid"], by_id["plain"]
    assert (waiting.states[r], waiting.states[p]) == (JobState.QUEUED, JobState.SCHEDULED)
    assert (waiting.gpus[r], waiting.gpus[p]) == (3, 1)
    assert (waiting.flexible[r], waiting.flexible[p]) == (False, True)
    assert (waiting.interruptible[r], waiting.interruptible[p]) == (True, False)
    assert (waiting.policies[r], waiting.policies[p]) == ("threshold", None)
    assert (waiting.thresholds[r], waiting.thresholds[p]) == (99.5, None)
    assert (waiting.providers[r], waiting.providers[p]) == ("egrid:RFCE", None)
    assert waiting.durations[r] == timedelta(minutes=90, microseconds=250_001).total_seconds()
    assert (waiting.submitted[r], waiting.deadlines[r]) == (T0, rigid.deadline)
    assert (waiting.planned[r], waiting.planned[p]) == (None, LATER)
    assert all(t.tzinfo is not None for t in [*waiting.submitted, *waiting.deadlines])
    assert store.waiting_providers() == {"egrid:RFCE", None}


def test_waiting_for_plan_reads_a_partition_at_a_time_and_misses_none(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("greenai.storage.store.PLAN_READ_CHUNK", 2)
    for k in range(5):
        store.submit(new_job(job_id=f"j{k}", provider="egrid:RFCE" if k % 2 else None), T0)
    store.set_plans(plan_rows(("j3", JobState.QUEUED, decision("j3"))))
    waiting = store.waiting_for_plan()
    records = store.jobs_in([JobState.QUEUED, JobState.SCHEDULED])
    assert by_job(waiting) == by_job(columns_of(records))
    assert sorted(waiting.ids) == [f"j{k}" for k in range(5)]


def test_waiting_for_plan_of_an_empty_queue_is_empty(store: Store) -> None:
    waiting = store.waiting_for_plan()
    assert len(waiting) == 0 and waiting.flexible == [] and waiting.gpus == []


def test_the_plan_read_and_write_agree_with_the_record_paths(store: Store) -> None:
    deadlines = [T0 + timedelta(hours=5), T0 + timedelta(hours=7, microseconds=250_001)]
    *_, last = (store.submit(new_job(deadline=d, threshold=90.0))[0] for d in deadlines)
    store.submit(new_job(flexible=False, gpus=2), T0)
    store.transition(last.id, JobState.QUEUED, JobState.SCHEDULED, Event(T0, "defer", "x"))
    waiting = store.waiting_for_plan()
    records = store.jobs_in([JobState.QUEUED, JobState.SCHEDULED])
    assert by_job(waiting) == by_job(columns_of(records))
    seen = forecast([300.0, 100.0, 50.0, 300.0] * 6)
    groups = plan_queue(waiting, lambda spec: seen, T0, QueueDefaults("fake", "window"))
    planned = 0
    for group in groups:
        planned += len(store.set_plans(group.rows(group.moved(timedelta(seconds=1)))))
    assert planned == 3
    for group in groups:
        for planned_decision in group.decisions:
            (*_, event) = store.events(planned_decision.job_id)
            text = encode_decision(planned_decision)
            assert event.payload == json.loads(text)
            assert (event.at, event.action, event.reason) == (
                T0,
                str(planned_decision.action),
                planned_decision.reason,
            )
            got = store.get(planned_decision.job_id)
            assert got.plan == json.loads(text)
            assert got.planned_start == (planned_decision.planned_start or T0)
    replanned = store.waiting_for_plan()
    assert by_job(replanned) == by_job(columns_of(store.jobs_in([JobState.SCHEDULED])))


# -- runs and their evidence -----------------------------------------------------------------


def test_finish_run_ends_the_job_and_stores_its_run(store: Store) -> None:
    record, _ = store.submit(new_job(gpus=2))
    start_running(store, record.id, gpu_ids=[1, 3])
    assert store.busy_gpu_ids(HOST) == {1, 3}
    run = run_summary(record.id, operational_g=300.0, saved_g=40.0, delay_s=60.0)
    done = T0 + timedelta(hours=1)
    finished = store.finish_run(
        record.id,
        JobState.SUCCEEDED,
        Event(done, "finish", "exit 0"),
        run,
        finished_at=done,
        exit_code=0,
    )
    assert (finished.state, finished.finished_at, finished.exit_code) == (
        JobState.SUCCEEDED,
        done,
        0,
    )
    assert store.runs(record.id) == [run]
    *_, event = store.events(record.id)
    assert (event.action, event.from_state, event.to_state) == (
        "finish",
        JobState.RUNNING,
        JobState.SUCCEEDED,
    )
    totals = store.totals()
    assert (totals.energy_kwh, totals.operational_g, totals.saved_g) == (2.0, 300.0, 40.0)
    assert (totals.deferral_s, totals.runs) == (60.0, 1)
    assert store.busy_gpu_ids(HOST) == set()


def test_a_refused_finish_stores_no_run(store: Store) -> None:
    record, _ = store.submit(new_job())
    with pytest.raises(InvalidTransition, match="is queued, not running"):
        store.finish_run(
            record.id, JobState.SUCCEEDED, Event(T0, "finish", "x"), run_summary(record.id)
        )
    assert store.runs(record.id) == [] and store.totals().runs == 0
    assert store.events(record.id) == [] and store.get(record.id) == record


def test_a_run_is_stored_once_even_if_finished_twice(store: Store) -> None:
    record, _ = store.submit(new_job())
    start_running(store, record.id)
    finish = Event(T0, "finish", "exit 0")
    store.finish_run(record.id, JobState.SUCCEEDED, finish, run_summary(record.id, "r1"))
    with pytest.raises(InvalidTransition, match="is succeeded, not running"):
        store.finish_run(record.id, JobState.FAILED, finish, run_summary(record.id, "r2"))
    assert [run.id for run in store.runs(record.id)] == ["r1"]
    assert store.get(record.id).state is JobState.SUCCEEDED


def test_a_run_that_cannot_be_stored_leaves_the_job_running(store: Store) -> None:
    first, _ = store.submit(new_job())
    second, _ = store.submit(new_job())
    for record in (first, second):
        start_running(store, record.id)
    finish = Event(T0, "finish", "exit 0")
    store.finish_run(first.id, JobState.SUCCEEDED, finish, run_summary(first.id, "r1"))
    with pytest.raises(IntegrityError):  # the same run id again: the insert fails
        store.finish_run(second.id, JobState.SUCCEEDED, finish, run_summary(second.id, "r1"))
    assert store.get(second.id).state is JobState.RUNNING
    assert [e.action for e in store.events(second.id)] == ["defer", "dispatch"]
    assert store.runs(second.id) == []


def test_runs_without_evidence_until_marked_appended(store: Store) -> None:
    jobs = [store.submit(new_job())[0] for _ in range(3)]
    for record in jobs:
        start_running(store, record.id)
    ends = [T0 + timedelta(hours=2), T0 + timedelta(hours=1), T0 + timedelta(hours=3)]
    runs = [
        run_summary(record.id, f"r{i}", finished_at=end, evidence_appended=i == 2)
        for i, (record, end) in enumerate(zip(jobs, ends, strict=True))
    ]
    for record, run in zip(jobs, runs, strict=True):
        store.finish_run(record.id, JobState.SUCCEEDED, Event(T0, "finish", "x"), run)
    pending = store.runs_without_evidence()
    assert [run.id for run in pending] == ["r1", "r0"]  # in the order they finished
    assert pending == [runs[1], runs[0]]
    assert pending[1].evidence == {"run_id": "r0", "job_id": jobs[0].id, "energy_kwh": "2.0"}
    store.mark_evidence_appended("r1")
    store.mark_evidence_appended("r1")  # idempotent
    assert [run.id for run in store.runs_without_evidence()] == ["r0"]
    assert store.runs(jobs[1].id)[0].evidence_appended
    store.mark_evidence_appended("r0")
    assert store.runs_without_evidence() == []


# -- times -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["2023-05-04 12:00:00.000000", "2023-05-04 12:00:00.250001", "2023-05-04", "2023-05-04T12:00Z"],
)
def test_stored_text_reads_as_utc_like_the_column_type(text: str) -> None:
    column = UTCDateTime().process_result_value(datetime.fromisoformat(text), sqlite_dialect())
    assert stored_utc(text) == column and stored_utc(text).tzinfo is UTC  # type: ignore[union-attr]


# -- replicas: GPU claims --------------------------------------------------------------------


def test_a_gpu_is_claimed_once_per_host_and_released_when_its_job_leaves_running(
    store: Store,
) -> None:
    first, _ = store.submit(new_job())
    second, _ = store.submit(new_job())
    elsewhere, _ = store.submit(new_job())
    start_running(store, first.id, gpu_ids=[0])
    with pytest.raises(InvalidTransition, match=r"GPUs \[0\] of node-1 are held"):
        start_running(store, second.id, gpu_ids=[0])
    assert store.get(second.id).state is JobState.SCHEDULED  # nothing of the claim written
    assert [e.action for e in store.events(second.id)] == ["defer"]
    start_running(store, elsewhere.id, gpu_ids=[0], host="node-2")  # another host's GPU 0
    assert store.busy_gpu_ids(HOST) == {0} and store.busy_gpu_ids("node-2") == {0}
    store.transition(first.id, JobState.RUNNING, JobState.QUEUED, Event(T0, "reconcile", "lost"))
    assert store.busy_gpu_ids(HOST) == set()
    store.claim(second.id, Event(T0, "dispatch", "go"), host=HOST, gpu_ids=[0])
    assert store.busy_gpu_ids(HOST) == {0}


def test_instances_register_and_heartbeat(store: Store) -> None:
    from greenai.storage.records import InstanceRecord

    store.register_instance(InstanceRecord("i-1", HOST, 123, T0, T0))
    store.heartbeat("i-1", T0 + timedelta(seconds=30))
    [instance] = store.instances()
    assert (instance.id, instance.pid, instance.heartbeat_at) == (
        "i-1",
        123,
        T0 + timedelta(seconds=30),
    )
