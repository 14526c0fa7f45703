"""Interruptible jobs through engine.tick with a frozen clock and a fake executor: the job runs
in the cheap steps, is paused and resumed, each piece is a run with its own evidence row, and
the pieces add up to the job's duration, across daemon restarts too."""

from __future__ import annotations

import itertools
import shutil
import signal
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenai.api.schemas import RunsTotal
from greenai.core.domain import JobState
from greenai.evidence.audit import audit_file
from greenai.executors.base import Running
from greenai.storage.database import make_engine, upgrade
from greenai.storage.records import JobRecord
from greenai.storage.store import Store
from tests.daemon.helpers import T0, FakeSource, forecast
from tests.daemon.test_engine import Rig

# Half-hour steps: cheap at [0, 30 min) and [60, 90 min), dear everywhere else.
ALTERNATING = [100.0, 300.0, 100.0, 300.0] + [300.0] * 92
TICK_MIN = 10


def rig_for(store: Store, folder: Path, values: list[float], **config: object) -> Rig:
    return Rig(store, folder, FakeSource(forecast(values)), **config)


def advance(rig: Rig, minutes: float) -> None:
    """Move the clock; a running fake command ends on its own once its pieces have run the
    job's declared duration (at that exact moment), then the engine ticks."""
    rig.clock.advance(minutes * 60)
    for record in rig.store.jobs_in([JobState.RUNNING]):
        run = rig.executor.run(record.id)
        end = run.started_at + record.job.duration - timedelta(seconds=record.ran_s)
        if isinstance(run.status, Running) and end <= rig.clock.now():
            rig.executor.finish(record.id, 0, finished_at=end)
    rig.engine.tick(rig.clock.now())


def test_a_job_runs_in_the_cheap_steps_paused_and_resumed(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = rig_for(sqlite_store, tmp_path, ALTERNATING)
    job = rig.submit(interruptible=True, deadline=T0 + timedelta(hours=4))
    rig.tick()
    [first] = rig.executor.launches
    assert (rig.state(job), first.piece, first.state_dir.name) == (JobState.RUNNING, 1, "piece-1")
    advance(rig, 30)  # the dear step: paused with SIGTERM
    assert rig.executor.pauses == [(job, signal.SIGTERM)]
    advance(rig, 10)  # the piece has stopped: paused, its GPU free
    paused = rig.store.get(job)
    assert (paused.state, paused.gpu_ids, paused.ran_s) == (JobState.PAUSED, (), 1800.0)
    advance(rig, 10)
    advance(rig, 10)  # the next cheap step: resumed
    second = rig.executor.launches[-1]
    assert (rig.state(job), second.piece, second.attempt) == (JobState.RUNNING, 2, 1)
    for _ in range(3):
        advance(rig, 10)
    done = rig.store.get(job)
    assert (done.state, done.pieces, done.ran_s) == (JobState.SUCCEEDED, 2, 3600.0)
    assert done.finished_at == T0 + timedelta(minutes=90)
    actions = [event.action for event in rig.store.events(job)]
    assert actions == ["start", "dispatch", "pause", "paused", "resume", "finish"]
    logged = [line for line in rig.files.lines() if '"action": "pause"' in line]
    assert len(logged) == 1 and '"action": "resume"' in rig.files.lines()[-1]
    rows = rig.files.rows()
    assert [row["notes"].split("; ")[-1] for row in rows] == [
        "piece 1 of an interruptible job, paused: more pieces follow",
        "piece 2 of 2: the last of an interruptible job's pieces",
    ]
    assert sum(float(row["duration_s"]) for row in rows) == 3600.0
    total = RunsTotal.of(rig.store.runs(job))  # what GET /jobs/{id} sums
    assert (total.runs, total.duration_s) == (2, 3600.0)
    assert total.energy_kwh == pytest.approx(sum(float(row["energy_kwh"]) for row in rows))


def test_a_job_that_names_its_own_pause_signal_is_paused_with_it(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = rig_for(sqlite_store, tmp_path, ALTERNATING)
    job = rig.submit(
        interruptible=True,
        deadline=T0 + timedelta(hours=4),
        pause_signal="SIGUSR1",
        pause_grace=timedelta(minutes=5),
    )
    rig.tick()
    advance(rig, 30)
    assert rig.executor.pauses == [(job, signal.SIGUSR1)]


def test_a_paused_job_frees_its_gpu_for_other_work(sqlite_store: Store, tmp_path: Path) -> None:
    rig = rig_for(sqlite_store, tmp_path, ALTERNATING)
    piece = rig.submit(interruptible=True, deadline=T0 + timedelta(hours=4))
    rig.tick()
    rigid = rig.submit(flexible=False, submitted_at=T0 + timedelta(minutes=30))
    advance(rig, 30)
    advance(rig, 10)
    assert (rig.state(piece), rig.state(rigid)) == (JobState.PAUSED, JobState.RUNNING)


def test_a_restart_while_paused_or_running_a_piece_neither_loses_nor_repeats_it(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = rig_for(sqlite_store, tmp_path, ALTERNATING)
    job = rig.submit(interruptible=True, deadline=T0 + timedelta(hours=4))
    rig.tick()
    advance(rig, 30)
    advance(rig, 10)
    assert rig.state(job) is JobState.PAUSED
    rig.restart().reconcile(rig.clock.now())  # while paused
    advance(rig, 20)
    assert rig.state(job) is JobState.RUNNING
    rig.restart().reconcile(rig.clock.now())  # while its second piece runs: re-attached
    assert rig.store.events(job)[-1].action == "reattach"
    for _ in range(3):
        advance(rig, 10)
    done = rig.store.get(job)
    assert (done.state, done.pieces, done.ran_s) == (JobState.SUCCEEDED, 2, 3600.0)
    assert rig.executor.launches == []  # nothing started again after re-attaching
    assert len(rig.files.rows()) == 2


def test_a_lost_piece_pauses_the_job_and_spends_an_attempt(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = rig_for(sqlite_store, tmp_path, ALTERNATING)
    job = rig.submit(interruptible=True, deadline=T0 + timedelta(hours=4))
    rig.tick()
    rig.executor.lose(job, "its supervisor died")
    advance(rig, 10)  # paused, then resumed at once: the step is still cheap
    again = rig.store.get(job)
    assert (again.state, again.attempts, again.ran_s) == (JobState.RUNNING, 2, 0.0)
    assert rig.executor.launches[-1].piece == 2
    [lost] = [event for event in rig.store.events(job) if event.action == "reconcile"]
    assert (lost.to_state, "its supervisor died" in lost.reason) == (JobState.PAUSED, True)


@pytest.mark.parametrize("grace_s", [0.0, 5.0])
def test_a_daemon_stopping_pauses_its_pieces_and_accounts_them(
    sqlite_store: Store, tmp_path: Path, grace_s: float
) -> None:
    rig = rig_for(sqlite_store, tmp_path, ALTERNATING)
    job = rig.submit(interruptible=True, deadline=T0 + timedelta(hours=4))
    rig.tick()
    rig.clock.advance(600)
    rig.engine.drain(rig.clock, grace_s=grace_s, poll_s=0)
    paused = rig.store.get(job)
    assert (paused.state, paused.ran_s, paused.attempts) == (JobState.PAUSED, 600.0, 1)
    assert rig.executor.pauses == [(job, signal.SIGTERM)]
    assert "daemon is stopping" in rig.store.events(job)[-2].reason
    [row] = rig.files.rows()
    assert row["notes"].endswith("paused: more pieces follow")


def test_a_cancelled_paused_job_is_cancelled(sqlite_store: Store, tmp_path: Path) -> None:
    rig = rig_for(sqlite_store, tmp_path, ALTERNATING)
    job = rig.submit(interruptible=True, deadline=T0 + timedelta(hours=4))
    rig.tick()
    advance(rig, 30)
    advance(rig, 10)
    assert rig.store.request_cancel(job, rig.clock.now()).state is JobState.CANCELLED


def test_jobs_that_are_not_interruptible_or_rigid_run_whole(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = rig_for(sqlite_store, tmp_path, ALTERNATING)
    whole = rig.submit(deadline=T0 + timedelta(hours=4), duration=timedelta(minutes=20))
    rigid = rig.submit(interruptible=True, flexible=False, duration=timedelta(minutes=20))
    rig.config.gpu_slots = (0, 1)
    rig.tick()
    assert {launch.piece for launch in rig.executor.launches} == {0}
    assert {rig.state(whole), rig.state(rigid)} == {JobState.RUNNING}


# -- the property ----------------------------------------------------------------------------

_TEMPLATE: list[Path] = []


def migrated_copy(folder: Path) -> Store:
    """A migrated SQLite database in ``folder``, copied from one migrated once."""
    if not _TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="greenai-pieces-")) / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
        _TEMPLATE.append(template)
    shutil.copy(_TEMPLATE[0], folder / "greenai.db")
    return Store(make_engine(f"sqlite:///{folder / 'greenai.db'}"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.sampled_from([50.0, 100.0, 200.0, 400.0]), min_size=96, max_size=96),
    duration_min=st.integers(10, 240),
    slack_min=st.integers(0, 480),
    restart_at=st.integers(0, 60),
)
def test_the_pieces_of_an_interruptible_job_add_up_to_its_duration(
    values: list[float], duration_min: int, slack_min: int, restart_at: int
) -> None:
    """Whatever the forecast, duration and slack, and wherever a daemon restart falls: the
    pieces are disjoint runs that add up to the declared duration exactly, end by the deadline
    (within a tick), and each has one evidence row that says which piece it was and that
    ``greenai audit`` reproduces."""
    with tempfile.TemporaryDirectory() as folder:
        store = migrated_copy(Path(folder))
        rig = rig_for(store, Path(folder), values)
        duration = timedelta(minutes=duration_min)
        deadline = T0 + duration + timedelta(minutes=slack_min)
        job = rig.submit(interruptible=True, duration=duration, deadline=deadline)
        rig.tick()
        for tick in range((duration_min + slack_min) // TICK_MIN + 10):
            if rig.store.get(job).state.is_final:
                break
            if tick == restart_at:
                rig.restart().reconcile(rig.clock.now())
            advance(rig, TICK_MIN)
        record = rig.store.get(job)
        assert_pieces_add_up(rig, record)
        store.engine.dispose()


def assert_pieces_add_up(rig: Rig, record: JobRecord) -> None:
    assert record.state is JobState.SUCCEEDED
    runs = sorted(rig.store.runs(record.id), key=lambda run: run.started_at)
    assert len(runs) == record.pieces >= 1
    spans = [(run.started_at, run.finished_at) for run in runs]
    assert all(end <= after for (_, end), (after, _) in itertools.pairwise(spans))
    total = sum(((end - start) for start, end in spans), timedelta())
    assert total == record.job.duration
    assert record.ran_s == pytest.approx(record.job.duration.total_seconds())
    assert spans[-1][1] <= record.job.deadline + timedelta(minutes=TICK_MIN)
    rows = rig.files.rows()
    notes = [row["notes"].split("; ")[-1] for row in rows]
    assert [note.split()[1] for note in notes] == [str(n) for n in range(1, len(runs) + 1)]
    assert not audit_file(rig.files.evidence).discrepancies
