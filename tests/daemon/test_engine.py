"""engine.tick with a frozen clock, a fake forecast and a fake executor driven by hand:
planning, dispatch, finishing, cancelling, re-attaching after a restart, evidence once."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from greenai.core.domain import NOT_MEASURED, EnergyReading, Job, JobState, OnDeadline
from greenai.core.settings import load_settings
from greenai.daemon import EvidenceFiles
from greenai.evidence.decisions import decode_decision
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine, run_until_idle
from greenai.storage.env_cipher import EnvCipher
from greenai.storage.records import Event, Submission
from greenai.storage.store import Store
from tests.daemon.helpers import T0, FakeSource, forecast
from tests.executors.fake import FakeExecutor
from tests.fakes import FrozenClock

# Half-hour steps: the cleanest hour starts at T0 + 1h.
VALUES = [300.0, 300.0, 100.0, 100.0, 300.0, 300.0, 300.0, 300.0] * 6


class Files(EvidenceFiles):
    """The daemon's evidence sink over real files in ``folder``, plus readers for the tests."""

    def __init__(self, folder: Path) -> None:
        super().__init__(load_settings(env={}, home=folder))
        self.decisions, self.evidence = (
            self.settings.decision_log_path,
            self.settings.evidence_path,
        )

    def lines(self) -> list[str]:
        return self.decisions.read_text(encoding="utf-8").splitlines()

    def rows(self) -> list[dict[str, str]]:
        if not self.evidence.exists():
            return []
        with self.evidence.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))


class Rig:
    """A store, an engine over a fake executor, its evidence files and a frozen clock."""

    def __init__(self, store: Store, tmp_path: Path, source: object = None, **config: Any) -> None:
        self.store, self.clock = store, FrozenClock(T0)
        self.files = Files(tmp_path)
        self.executor = FakeExecutor(self.clock)
        self.source = source or FakeSource(forecast(VALUES))
        self.config = EngineConfig(
            config.pop("slots", (0,)),
            tmp_path / "runs",
            settings=load_settings(env={}, power_watts=3600),
            **config,
        )
        self.engine = self._engine(self.executor)

    def _engine(self, executor: FakeExecutor) -> Engine:
        source = self.source
        return Engine(self.store, executor, self.config, lambda spec: source, self.files)  # type: ignore[arg-type,return-value]

    def restart(self) -> Engine:
        """A new engine over the same store and runs, as a restarted daemon builds; the old
        one is dead (in-process, its pid lives on: its heartbeat is made stale instead)."""
        self.store.heartbeat(self.config.instance_id, T0 - timedelta(days=1))
        self.executor = self.executor.restarted()
        self.config = replace(self.config, instance_id=str(uuid.uuid4()))
        self.engine = self._engine(self.executor)
        return self.engine

    def submit(self, **fields: Any) -> str:
        fields.setdefault("command", ("train",))
        job = Job(
            f"job-{len(self.store.list_jobs()[0])}",
            fields.pop("submitted_at", T0),
            fields.pop("duration", timedelta(hours=1)),
            fields.pop("deadline", T0 + timedelta(hours=12)),
            **fields,
        )
        record, _ = self.store.submit(Submission(job), T0)
        return record.id

    def tick(self, minutes: float = 0) -> None:
        self.clock.advance(minutes * 60)
        self.engine.tick(self.clock.now())

    def state(self, job_id: str) -> JobState:
        return self.store.get(job_id).state


@pytest.fixture
def rig(sqlite_store: Store, tmp_path: Path) -> Rig:
    return Rig(sqlite_store, tmp_path)


def test_a_tick_that_comes_after_the_planned_start_starts_the_job_instead_of_moving_it(
    rig: Rig,
) -> None:
    """At 13:01 the clean hour's window ends a minute into dirtier air: re-planned, the job
    went to the next clean hour (17:00), and at 17:01 to 21:00, until its slack ran out."""
    job = rig.submit(name="train")
    rig.tick()
    assert rig.store.get(job).planned_start == T0 + timedelta(hours=1)
    rig.tick(minutes=61)
    record = rig.store.get(job)
    assert record.state is JobState.RUNNING
    assert [launch.job_id for launch in rig.executor.launches] == [job]
    assert record.plan is not None
    assert record.plan["reason"] == "planned start 2023-05-04T13:00:00Z reached: starts now"


def test_a_job_waits_for_the_clean_window_runs_and_is_accounted(rig: Rig) -> None:
    job = rig.submit(name="train")
    rig.tick()
    planned = rig.store.get(job)
    assert planned.state is JobState.SCHEDULED and planned.planned_start == T0 + timedelta(hours=1)
    rig.tick(30)
    assert rig.state(job) is JobState.SCHEDULED and not rig.executor.launches  # not yet due
    rig.tick(30)
    [launch] = rig.executor.launches
    assert (launch.attempt, launch.gpu_ids, launch.command) == (1, (0,), ("train",))
    assert launch.state_dir == rig.config.runs_dir / job / "1"
    rig.clock.advance(3600)
    reading = EnergyReading(T0 + timedelta(hours=1), rig.clock.now(), gpu_kwh=0.5, meter="nvml")
    rig.executor.finish(job, 0, reading=reading)
    rig.tick()
    done = rig.store.get(job)
    assert (done.state, done.exit_code, done.attempts) == (JobState.SUCCEEDED, 0, 1)
    assert done.finished_at == T0 + timedelta(hours=2)  # the run's real end
    assert [e.action for e in rig.store.events(job)] == ["defer", "dispatch", "finish"]
    [row] = rig.files.rows()
    assert row["decision"] == "best window starts now (mean 100.0)"  # what started it
    assert (row["policy"], row["meter"], row["energy_kwh"]) == ("window", "nvml", "0.5")
    assert float(row["forecast_intensity"]) == pytest.approx(100.0)
    assert float(row["actual_intensity"]) == pytest.approx(100.0)
    [run] = rig.store.runs(job)
    assert run.evidence_appended and run.evidence["run_id"] == row["run_id"]


def test_every_decision_is_stored_and_logged_as_the_same_text(rig: Rig, tmp_path: Path) -> None:
    job = rig.submit(name="zürich-東京")
    rig.tick()
    rig.tick(60)
    logged = rig.files.lines()
    assert [json.loads(line)["action"] for line in logged] == ["defer", "start"]
    with sqlite3.connect(tmp_path / "greenai.db") as db:
        stored = [row[0] for row in db.execute("SELECT payload FROM decisions ORDER BY id")]
    assert stored[:2] == logged  # byte for byte: one encoder
    assert decode_decision(logged[1]).job_id == job


def test_never_more_running_jobs_than_gpu_slots(sqlite_store: Store, tmp_path: Path) -> None:
    rig = Rig(sqlite_store, tmp_path, FakeSource(None), slots=(0, 1))
    ids = [rig.submit() for _ in range(5)]
    rig.tick()
    assert rig.executor.running() == ids[:2]
    assert {g for launch in rig.executor.launches for g in launch.gpu_ids} == {0, 1}
    for finished in ids[:3]:
        rig.executor.finish(finished)
        rig.tick(1)
        assert len(rig.executor.running()) <= 2
    assert rig.state(ids[0]) is JobState.SUCCEEDED and len(rig.executor.launches) == 5


def test_an_executor_that_picks_gpus_gets_a_count_and_slots_are_still_counted(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = Rig(sqlite_store, tmp_path, FakeSource(None), slots=(0, 1, 2))
    rig.executor.picks_gpus = True  # as Slurm or Kubernetes would
    pair, single, waiting = rig.submit(gpus=2), rig.submit(gpus=1), rig.submit(gpus=1)
    rig.tick()
    assert [(launch.gpus, launch.gpu_ids) for launch in rig.executor.launches] == [(2, ()), (1, ())]
    assert rig.executor.running() == [pair, single] and rig.state(waiting) is JobState.SCHEDULED
    rig.executor.finish(single)
    rig.tick(1)
    assert rig.executor.running() == [pair, waiting]


def test_a_job_that_expires_at_its_deadline_is_launched_to_stop_there(rig: Rig) -> None:
    rig.config.gpu_slots = (0, 1)
    expiring = rig.submit(deadline=T0 + timedelta(hours=1), on_deadline=OnDeadline.EXPIRE)
    late_is_fine = rig.submit(deadline=T0 + timedelta(hours=1))
    rig.tick()
    stops = {launch.job_id: launch.stop_at for launch in rig.executor.launches}
    assert stops == {expiring: T0 + timedelta(hours=1), late_is_fine: None}
    assert {launch.grace_s for launch in rig.executor.launches} == {rig.config.grace_s}


def test_a_rigid_job_starts_at_once_whatever_the_policy(rig: Rig) -> None:
    rigid, flexible = rig.submit(flexible=False), rig.submit()
    rig.tick()
    assert rig.executor.running() == [rigid]
    [decision] = [e for e in rig.store.events(rigid) if e.action == "start"]
    assert decision.payload["policy"] == "now"
    assert rig.state(flexible) is JobState.SCHEDULED


def test_deadline_expire_and_deadline_run(sqlite_store: Store, tmp_path: Path) -> None:
    rig = Rig(sqlite_store, tmp_path, slots=())
    deadline = T0 + timedelta(hours=2)
    expiring = rig.submit(deadline=deadline, on_deadline=OnDeadline.EXPIRE)
    running = rig.submit(deadline=deadline, on_deadline=OnDeadline.RUN)
    rig.tick()
    rig.tick(120)
    assert rig.state(expiring) is JobState.EXPIRED
    late = rig.store.get(running)
    assert late.state is JobState.SCHEDULED  # no free slot, but still going to run
    assert late.planned_start == rig.clock.now()
    assert "expire" in [json.loads(line)["action"] for line in rig.files.lines()]


def test_the_store_finds_exactly_the_waiting_jobs_due_to_expire(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """The engine asks the database for these instead of decoding every waiting job."""
    rig = Rig(sqlite_store, tmp_path, slots=())
    now = T0 + timedelta(hours=2)
    due = rig.submit(deadline=now, on_deadline=OnDeadline.EXPIRE)
    rig.submit(deadline=now + timedelta(microseconds=1), on_deadline=OnDeadline.EXPIRE)
    rig.submit(deadline=now - timedelta(hours=1), on_deadline=OnDeadline.RUN)
    older = rig.submit(deadline=now - timedelta(minutes=1), on_deadline=OnDeadline.EXPIRE)
    assert [record.id for record in rig.store.expiring(now)] == [older, due]
    assert rig.store.has_waiting()


def test_a_failing_stage_is_recorded_and_the_others_still_run(rig: Rig) -> None:
    def broken() -> set[str]:
        raise RuntimeError("bug in a query")

    rig.store.waiting_providers = broken  # type: ignore[method-assign]
    job = rig.submit()
    rig.tick()
    assert rig.engine.stats.stage_errors == {"refresh": 1}
    assert "bug in a query" in (rig.engine.stats.last_error or "")
    assert rig.state(job) is JobState.RUNNING  # planned blind, and started


def test_a_provider_raising_anything_is_a_provider_error_not_a_failed_stage(
    sqlite_store: Store, tmp_path: Path
) -> None:
    class Broken:
        def forecast(self, now: object, horizon: object) -> None:
            raise ZeroDivisionError("data_point_period_seconds: 0")

    rig = Rig(sqlite_store, tmp_path, Broken())
    rig.tick()
    assert rig.engine.stats.stage_errors == {} and rig.engine.stats.provider_errors == 1


def test_provider_errors_are_counted_and_the_cache_kept(
    sqlite_store: Store, tmp_path: Path
) -> None:
    source = FakeSource(forecast(VALUES, fallback="uk:13"))
    rig = Rig(sqlite_store, tmp_path, source, refresh_every=timedelta(0))
    rig.tick()
    source.answer = None
    rig.tick(1)
    assert (rig.engine.stats.provider_errors, rig.engine.stats.fallbacks) == (1, 1)
    cached = rig.engine.forecast()
    assert cached is not None and cached.values[0] == 300.0


def test_cancel_stops_a_running_command(sqlite_store: Store, tmp_path: Path) -> None:
    rig = Rig(sqlite_store, tmp_path, FakeSource(None))
    job = rig.submit()
    rig.tick()
    rig.store.request_cancel(job, rig.clock.now())
    rig.tick()
    assert rig.executor.cancels == [(job, False)]
    done = rig.store.get(job)
    assert (done.state, done.exit_code) == (JobState.CANCELLED, 143)


def test_a_command_that_cannot_start_fails_its_job_with_the_reason(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = Rig(sqlite_store, tmp_path, FakeSource(None))
    rig.executor.missing_commands = frozenset({"/no/such/command"})
    job = rig.submit(command=("/no/such/command",))
    rig.tick()
    rig.tick()
    failed = rig.store.get(job)
    assert (failed.state, failed.exit_code) == (JobState.FAILED, 127)
    assert "command not found: /no/such/command" in rig.store.events(job)[-1].reason
    assert rig.store.busy_gpu_ids(rig.config.host) == set()


def test_an_executor_that_cannot_launch_fails_the_job_and_frees_its_gpus(rig: Rig) -> None:
    rig.executor.fail_next_submit("cannot start its supervisor")
    job = rig.submit(deadline=T0 + timedelta(hours=1))
    rig.tick()
    assert rig.state(job) is JobState.FAILED
    assert "could not start" in rig.store.events(job)[-1].reason
    assert rig.store.busy_gpu_ids(rig.config.host) == set()


def test_a_job_whose_env_no_key_here_opens_fails_at_launch_naming_the_cause(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = Rig(sqlite_store, tmp_path, FakeSource(None))
    elsewhere = EnvCipher([Fernet.generate_key()], "the keys in /elsewhere/env.key")
    submitted = Store(sqlite_store.engine, env_cipher=elsewhere).submit(
        Submission(Job("sealed", T0, timedelta(hours=1), T0 + timedelta(hours=12), env={"A": "1"}))
    )[0]
    rig.tick()
    rig.tick()
    failed = rig.store.get(submitted.id)
    assert (failed.state, failed.job.env, rig.executor.launches) == (JobState.FAILED, None, [])
    cause = f"job env cannot be decrypted with {sqlite_store.env_cipher.source}"
    assert rig.store.events(submitted.id)[-1].reason == f"could not start: {cause}"
    assert rig.store.busy_gpu_ids(rig.config.host) == set()


# -- restarts --------------------------------------------------------------------------------


def _running(rig: Rig, count: int = 1) -> list[str]:
    ids = [rig.submit(deadline=T0 + timedelta(hours=1)) for _ in range(count)]
    rig.tick()
    assert rig.executor.running() == ids
    return ids


def test_a_restarted_engine_reattaches_to_a_live_run_and_records_it_once(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = Rig(sqlite_store, tmp_path, slots=(0, 1))
    [job] = _running(rig)
    engine = rig.restart()
    assert engine.reconcile(rig.clock.now()) == 1
    assert rig.state(job) is JobState.RUNNING and engine.running_jobs == 1
    assert rig.store.events(job)[-1].action == "reattach"
    rig.clock.advance(600)
    rig.executor.finish(job, 3, finished_at=rig.clock.now())
    rig.tick()
    done = rig.store.get(job)
    assert (done.state, done.exit_code, done.attempts) == (JobState.FAILED, 3, 1)
    assert done.finished_at == T0 + timedelta(minutes=10)
    assert len(rig.files.rows()) == 1


def test_a_run_that_ended_while_no_daemon_watched_is_finished_at_restart(rig: Rig) -> None:
    [job] = _running(rig)
    rig.executor.finish(job, 0, finished_at=T0 + timedelta(minutes=5))
    engine = rig.restart()
    rig.clock.advance(3600)
    engine.reconcile(rig.clock.now())
    done = rig.store.get(job)
    assert (done.state, done.finished_at) == (JobState.SUCCEEDED, T0 + timedelta(minutes=5))
    assert [row["exit_code"] for row in rig.files.rows()] == ["0"]


def test_lost_runs_are_requeued_within_the_budget_else_failed(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = Rig(sqlite_store, tmp_path, slots=(0, 1), retry_budget=1)
    first, second = _running(rig, 2)
    rig.store.transition(
        second, JobState.RUNNING, JobState.RUNNING, Event(T0, "x", "x"), attempts=2
    )
    for job in (first, second):
        rig.executor.lose(job, "its supervisor died")
    rig.restart().reconcile(rig.clock.now())
    requeued, failed = rig.store.get(first), rig.store.get(second)
    assert (requeued.state, requeued.gpu_ids, requeued.plan) == (JobState.QUEUED, (), None)
    assert "its supervisor died" in rig.store.events(first)[-1].reason
    assert failed.state is JobState.FAILED and "budget" in rig.store.events(second)[-1].reason
    assert rig.store.busy_gpu_ids(rig.config.host) == set() and rig.files.rows() == []


def test_a_requeued_job_is_launched_again_not_taken_for_one_already_handed_over(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """A re-queued job keeps the handle of the run it lost; that handle is no hand-over (the
    crash harness saw such a job "dispatched" without a launch, lost, 1000 times over)."""
    rig = Rig(sqlite_store, tmp_path, slots=(0, 1), retry_budget=3)
    [job] = _running(rig, 1)
    rig.executor.lose(job, "its supervisor died")
    rig.restart().reconcile(rig.clock.now())
    assert rig.store.get(job).handle is not None  # the lost run's, kept for the record
    rig.tick()
    assert rig.state(job) is JobState.RUNNING
    assert [launch.attempt for launch in rig.executor.launches if launch.job_id == job] == [2]


def test_a_running_job_without_a_handle_or_of_another_executor_is_settled(rig: Rig) -> None:
    bare, foreign = _running(rig, 1)[0], rig.submit()
    rig.store.update_running(bare, handle=None)
    slurm = {"executor": "slurm", "job_id": foreign, "attempt": 1}
    dispatch = Event(T0, "x", "x")
    rig.store.transition(
        foreign, JobState.QUEUED, JobState.RUNNING, dispatch, attempts=1, handle=slurm
    )
    rig.restart().reconcile(rig.clock.now())
    assert "before its run started" in rig.store.events(bare)[-1].reason
    assert "belongs to the slurm executor" in rig.store.events(foreign)[-1].reason
    assert {rig.state(bare), rig.state(foreign)} == {JobState.QUEUED}


def test_evidence_stored_but_not_yet_appended_is_appended_once_at_restart(rig: Rig) -> None:
    first, second = _running(rig, 1)[0], None
    rig.executor.finish(first, 0)
    rig.tick()
    [run] = rig.store.runs(first)
    # As if the daemon died after storing the run: not marked, and once not even in the file.
    with sqlite3.connect(rig.files.evidence.parent / "greenai.db") as db:
        db.execute("UPDATE runs SET evidence_appended = 0")
    rig.restart().reconcile(rig.clock.now())
    assert [row["run_id"] for row in rig.files.rows()] == [run.id]  # already there: not again
    rig.files.evidence.unlink()
    with sqlite3.connect(rig.files.evidence.parent / "greenai.db") as db:
        db.execute("UPDATE runs SET evidence_appended = 0")
    rig.restart().reconcile(rig.clock.now())
    assert [row["run_id"] for row in rig.files.rows()] == [
        run.id
    ]  # missing: written from the store
    assert rig.store.runs_without_evidence() == [] and second is None


def test_drain_requeues_what_outlives_the_grace(sqlite_store: Store, tmp_path: Path) -> None:
    rig = Rig(sqlite_store, tmp_path, FakeSource(None), retry_budget=0)
    rig.executor.obey_cancel = False
    [job] = _running(rig)
    waiting = rig.submit()
    rig.executor.obey_cancel = True
    rig.engine.drain(rig.clock, grace_s=0.05, poll_s=0.01)
    assert rig.executor.cancels[-1] == (job, True)
    assert rig.state(job) is JobState.QUEUED
    rig.tick()
    assert rig.state(waiting) is not JobState.RUNNING  # dispatching stopped


def test_run_until_idle_finishes_everything(sqlite_store: Store, tmp_path: Path) -> None:
    rig = Rig(sqlite_store, tmp_path, slots=(0, 1))
    ids = [rig.submit(command=("true",)) for _ in range(3)]

    class Finishing(FrozenClock):
        def wait(self, seconds: float, cancel: object = None) -> bool:
            for job in rig.executor.running():
                rig.executor.finish(job)
            return super().wait(seconds)

    clock = Finishing(rig.clock.now())
    rig.executor.clock = clock
    assert run_until_idle(rig.engine, clock, step_s=600, max_ticks=50) < 50
    assert all(rig.state(i) is JobState.SUCCEEDED for i in ids)
    assert len(rig.files.rows()) == 3


# -- failures after a job is claimed ---------------------------------------------------------


def test_an_executor_that_raises_anything_at_launch_fails_the_job_and_says_why(rig: Rig) -> None:
    def broken(launch: object) -> object:
        raise ValueError("embedded null byte")

    rig.executor.submit = broken  # type: ignore[method-assign,assignment]
    job = rig.submit(deadline=T0 + timedelta(hours=1))
    rig.tick()
    assert rig.state(job) is JobState.FAILED
    assert rig.store.events(job)[-1].reason == "could not start: ValueError: embedded null byte"
    assert rig.store.busy_gpu_ids(rig.config.host) == set() and rig.engine.stats.start_failures == 1


def test_an_executor_that_cannot_say_how_a_run_is_has_lost_it(rig: Rig) -> None:
    [job] = _running(rig)
    real_poll = rig.executor.poll

    def broken(handle: Any) -> Any:
        rig.executor.poll = real_poll  # type: ignore[method-assign]
        rig.executor.lose(job)  # whatever the run left behind is gone
        raise OSError("state folder unreadable")

    rig.executor.poll = broken  # type: ignore[method-assign]
    rig.tick()
    reasons = [e.reason for e in rig.store.events(job) if e.action == "reconcile"]
    assert reasons == [
        "its run was lost (the executor could not tell: OSError: state folder unreadable); "
        "re-queued (attempt 1, budget 1)"
    ]
    assert rig.engine.stats.lost_runs == 1
    assert rig.store.get(job).attempts == 2  # and it ran again


def test_a_history_that_raises_still_ends_the_job_accounted_without_intensity(
    sqlite_store: Store, tmp_path: Path
) -> None:
    class Broken(FakeSource):
        def history(self, start: object, end: object) -> Any:
            raise ZeroDivisionError("data_point_period_seconds: 0")

    rig = Rig(sqlite_store, tmp_path, Broken(forecast(VALUES)))
    [job] = _running(rig)
    rig.executor.finish(job, 0)
    rig.tick()
    done = rig.store.get(job)
    assert done.state is JobState.SUCCEEDED
    assert "accounted without intensity (ZeroDivisionError" in rig.store.events(job)[-1].reason
    [row] = rig.files.rows()
    assert row["operational_g"] == "" and row["exit_code"] == "0"
    assert rig.engine.stats.accounting_failures == 1


def test_a_run_whose_finishing_fails_stays_watched_and_is_finished_next_tick(rig: Rig) -> None:
    [job] = _running(rig)
    rig.executor.finish(job, 0)
    real = rig.store.finish_run
    calls: list[str] = []

    def down_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0])
        if len(calls) == 1:
            raise ConnectionError("database is down")
        return real(*args, **kwargs)

    rig.store.finish_run = down_once  # type: ignore[method-assign]
    rig.tick()
    assert rig.state(job) is JobState.RUNNING and rig.engine.running_jobs == 1
    assert rig.engine.stats.problems(rig.clock.now()) == [
        "reap failed: ConnectionError: database is down"
    ]
    rig.tick()
    assert rig.state(job) is JobState.SUCCEEDED and len(rig.files.rows()) == 1
    assert rig.engine.stats.problems(rig.clock.now()) == []
    assert rig.engine.stats.problems(rig.clock.now() + timedelta(minutes=10), timedelta(minutes=1))


# -- replicas --------------------------------------------------------------------------------


def test_two_daemons_on_one_host_never_share_a_gpu_nor_adopt_a_live_siblings_run(
    sqlite_store: Store, tmp_path: Path
) -> None:
    first = Rig(sqlite_store, tmp_path / "a", FakeSource(None), slots=(0,))
    second = Rig(sqlite_store, tmp_path / "b", FakeSource(None), slots=(0,))
    second.executor = first.executor.restarted()  # one host: the same runs are visible
    second.engine = second._engine(second.executor)
    for rig in (first, second):
        rig.engine.reconcile(rig.clock.now())
    jobs = [first.submit(), first.submit()]
    first.tick()
    second.tick()
    assert first.executor.running() == jobs[:1]  # GPU 0 is taken: the sibling waits
    assert second.engine.running_jobs == 0
    assert second.store.get(jobs[0]).instance_id == first.config.instance_id
    # The first daemon dies: its heartbeat goes stale; the second adopts its run.
    sqlite_store.heartbeat(first.config.instance_id, T0 - timedelta(days=1))
    second.tick()
    assert second.engine.running_jobs == 1
    assert second.store.get(jobs[0]).instance_id == second.config.instance_id
    second.executor.finish(jobs[0], 0)
    second.tick()
    second.tick()
    assert second.state(jobs[0]) is JobState.SUCCEEDED
    assert second.executor.running() == jobs[1:]
    assert len(second.files.rows()) == 1


def test_an_instance_whose_process_is_a_zombie_is_dead(tmp_path: Path) -> None:
    """A killed daemon's loop lingers as a zombie until someone reaps it: its runs are to be
    adopted now, not when its lease runs out."""
    import subprocess
    import time

    from greenai.scheduling.engine import live_instances
    from greenai.storage.records import InstanceRecord

    child = subprocess.Popen(["true"])  # exits at once; unreaped until wait(): a zombie
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        now = T0
        zombie = InstanceRecord("dead", "host-a", child.pid, now, now)
        live = InstanceRecord("live", "host-a", os.getpid(), now, now)
        found = live_instances([zombie, live], "host-a", now, timedelta(minutes=3))
        assert found == {"live"}
    finally:
        child.wait()


def _unmeasured_run(rig: Rig, meters: str) -> tuple[str, dict[str, str]]:
    """A two-GPU job whose supervisor's meter failed at stop, on a daemon with ``meters``."""
    rig.config = replace(
        rig.config, gpu_slots=(0, 1), settings=load_settings(env={}, meters=meters)
    )
    rig.engine = rig._engine(rig.executor)
    job = rig.submit(name="train", gpus=2, policy="now")
    rig.tick()
    [launch] = rig.executor.launches
    assert launch.gpu_ids == (0, 1)
    rig.clock.advance(600)
    note = "energy not measured: the meter failed at stop: nvml: cannot read GPU energy"
    rig.executor.finish(job, 0, notes=(note,))
    rig.tick()
    [row] = rig.files.rows()
    return job, row


def test_a_meter_that_failed_is_not_written_as_0_kwh_where_no_estimate_is_allowed(
    rig: Rig,
) -> None:
    """Issue 9 #2: the row said ``meter=none, energy_kwh=0, operational_g=0, saved_g=0``."""
    job, row = _unmeasured_run(rig, "nvml")
    assert row["meter"] == "none"
    for column in ("cpu_kwh", "gpu_kwh", "ram_kwh", "energy_kwh", "operational_g", "saved_g"):
        assert row[column] == "", column
    assert row["counterfactual_g"] == "" and row["sci_g_per_unit"] == ""
    assert row["gpu_count"] == "2" and float(row["embodied_g"]) > 0  # its two GPUs held
    [run] = rig.store.runs(job)
    assert (run.energy_kwh, run.meter, run.operational_g) == (None, "none", None)
    finish = rig.store.events(job)[-1]
    assert "the meter failed at stop" in finish.reason and "allows no estimate" in finish.reason


def test_an_estimate_stands_in_for_a_failed_meter_only_where_allowed_and_says_so(
    rig: Rig,
) -> None:
    job, row = _unmeasured_run(rig, "auto")
    assert row["meter"] == "estimate" and float(row["energy_kwh"]) > 0
    assert row["gpu_count"] == "2"
    finish = rig.store.events(job)[-1]
    assert "estimate, not a measurement" in finish.reason
    assert "the meter failed at stop" in finish.reason


class _BlindToGpus(FakeExecutor):
    """An executor whose meters cannot see GPUs (a host without NVML)."""

    def meter_notes(self, gpu_ids: tuple[int, ...]) -> tuple[str, ...]:
        return (f"GPU energy not measured: no NVML for GPUs {list(gpu_ids)}",) if gpu_ids else ()


def test_what_the_meters_cannot_measure_is_in_the_decision_that_starts_the_job(rig: Rig) -> None:
    """Issue 9 #3: the notes reached the row, not the decision log; now the start says so,
    in the decision log and in the stored plan, and only for the jobs it concerns."""
    rig.config = replace(rig.config, gpu_slots=(0, 1))
    rig.executor = _BlindToGpus(rig.clock)
    rig.engine = rig._engine(rig.executor)
    gpu_job = rig.submit(name="train", gpus=2, policy="now")
    cpu_job = rig.submit(name="etl", gpus=0, policy="now")
    rig.tick()
    starts = {
        d["job_id"]: d["warnings"]
        for d in map(json.loads, rig.files.lines())
        if d["action"] == "start"
    }
    assert starts == {gpu_job: ["GPU energy not measured: no NVML for GPUs [0, 1]"], cpu_job: []}
    stored = rig.store.get(gpu_job).plan
    assert stored is not None and stored["warnings"] == starts[gpu_job]


def test_a_readings_notes_reach_a_warning_and_the_runs_event_and_its_gpus_the_row(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 9 #3: "GPU energy not measured" never left the reading; the row said 0 GPUs."""
    rig.config = replace(rig.config, gpu_slots=(0, 1))
    rig.engine = rig._engine(rig.executor)
    job = rig.submit(name="train", gpus=2, policy="now")
    rig.tick()
    rig.clock.advance(600)
    notes = ("GPU energy not measured: nvml: cannot initialise NVML", "2 GPU(s) given to the job")
    reading = EnergyReading(
        T0,
        rig.clock.now(),
        cpu_kwh=0.02,
        gpu_kwh=NOT_MEASURED,
        meter="codecarbon",
        gpu_count=2,
        notes=notes,
    )
    rig.executor.finish(job, 0, reading=reading)
    with caplog.at_level("WARNING", logger="greenai.scheduling.engine"):
        rig.tick()
    [row] = rig.files.rows()
    assert (row["meter"], row["gpu_count"], row["gpu_kwh"], row["cpu_kwh"]) == (
        "codecarbon",
        "2",
        "",
        "0.02",
    )
    assert row["energy_kwh"] == "" and row["operational_g"] == ""
    finish = rig.store.events(job)[-1]
    assert all(note in finish.reason for note in notes)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert all(any(note in line for line in warned) for note in notes)
