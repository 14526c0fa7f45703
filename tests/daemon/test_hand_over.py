"""An executor that holds jobs until their start (Slurm's ``--begin``) gets each planned job
ahead of its start, follows the re-plans that move it, runs it at its start without a second
submission, and withdraws it when the job is cancelled before it starts. Against a fake here;
against a real Slurm in ``test_slurm_runs.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from greenai.core.domain import JobState
from greenai.core.time import format_time
from greenai.executors.base import Handle, Launch, SubmitsAhead
from greenai.storage.store import Store
from tests.daemon.helpers import T0, forecast
from tests.daemon.test_engine import VALUES, Rig
from tests.executors.fake import FakeExecutor

HOUR = timedelta(hours=1)


@dataclass
class Held:
    begin: datetime
    started: bool = False


class AheadExecutor(FakeExecutor):
    """The fake executor, holding submitted runs until their ``begin`` as Slurm does."""

    ahead = timedelta(hours=6)
    held: dict[str, Held]
    moves: list[tuple[str, datetime]]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.held, self.moves = {}, []

    def submit_at(self, launch: Launch, begin: datetime | None) -> Handle:
        handle = self.submit(launch)
        self.held[launch.job_id] = Held(begin or self.clock.now())
        return Handle(handle.executor, handle.job_id, handle.attempt, {**handle.ref, "job_id": "7"})

    def move(self, handle: Handle, begin: datetime) -> bool:
        if self.held[handle.job_id].begin <= self.clock.now():
            return False  # it started at its begin
        self.moves.append((handle.job_id, begin))
        self.held[handle.job_id].begin = begin
        return True


@dataclass
class AheadRig:
    rig: Rig
    executor: AheadExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.executor = AheadExecutor(self.rig.clock)
        self.rig.executor = self.executor
        self.rig.engine = self.rig._engine(self.executor)


def ahead_rig(store: Store, tmp_path: Path) -> AheadRig:
    return AheadRig(Rig(store, tmp_path))


def test_the_protocol_is_recognised() -> None:
    assert isinstance(AheadExecutor(), SubmitsAhead)
    assert not isinstance(FakeExecutor(), SubmitsAhead)


def test_a_planned_job_is_handed_over_held_until_its_start_and_claimed_then(
    sqlite_store: Store, tmp_path: Path
) -> None:
    setup = ahead_rig(sqlite_store, tmp_path)
    rig, executor = setup.rig, setup.executor
    job = rig.submit(name="train")
    rig.tick()
    record = rig.store.get(job)
    assert record.state is JobState.SCHEDULED and record.planned_start == T0 + HOUR
    assert executor.held[job].begin == T0 + HOUR and len(executor.launches) == 1
    assert record.handle is not None and record.handle["ref"]["begin"] == format_time(T0 + HOUR)
    assert (
        "handed to fake (job_id 7), held until its planned start"
        in rig.store.events(job)[-1].reason
    )
    rig.tick(minutes=30)  # nothing changes: handed over once, not again
    assert len(executor.launches) == 1 and executor.moves == []
    rig.tick(minutes=30)  # its start: claimed as running, without a second submission
    assert rig.state(job) is JobState.RUNNING and len(executor.launches) == 1
    executor.finish(job, 0)
    rig.tick(minutes=60)
    assert rig.state(job) is JobState.SUCCEEDED
    [row] = rig.files.rows()
    assert row["job_id"] == job and row["exit_code"] == "0"


def test_a_replan_moves_the_held_job(sqlite_store: Store, tmp_path: Path) -> None:
    setup = ahead_rig(sqlite_store, tmp_path)
    rig, executor = setup.rig, setup.executor
    job = rig.submit(name="train")
    rig.tick()
    assert executor.held[job].begin == T0 + HOUR
    later = [300.0] * 4 + [300.0, 300.0, 50.0, 50.0] + VALUES[8:]  # the clean hour is now 3h
    rig.source.answer = forecast(later)  # type: ignore[attr-defined]
    rig.tick(minutes=31)  # the forecast is refreshed every 30 min
    assert rig.store.get(job).planned_start == T0 + 3 * HOUR
    assert executor.moves == [(job, T0 + 3 * HOUR)]
    handle = rig.store.get(job).handle
    assert handle is not None and handle["ref"]["begin"] == format_time(T0 + 3 * HOUR)


def test_a_job_cancelled_before_its_start_is_withdrawn(sqlite_store: Store, tmp_path: Path) -> None:
    setup = ahead_rig(sqlite_store, tmp_path)
    rig, executor = setup.rig, setup.executor
    job = rig.submit(name="train")
    rig.tick()
    rig.store.request_cancel(job, rig.clock.now())
    rig.tick(minutes=1)
    assert executor.cancels == [(job, True)]
    assert rig.store.get(job).handle is None  # withdrawn once, not at every tick
    rig.tick(minutes=1)
    assert executor.cancels == [(job, True)]
    assert rig.state(job) is JobState.CANCELLED


def test_a_job_planned_past_the_lead_waits_to_be_handed_over(
    sqlite_store: Store, tmp_path: Path
) -> None:
    setup = ahead_rig(sqlite_store, tmp_path)
    rig, executor = setup.rig, setup.executor
    executor.ahead = timedelta(minutes=30)
    job = rig.submit(name="train")
    rig.tick()
    assert rig.store.get(job).planned_start == T0 + HOUR and executor.launches == []
    rig.tick(minutes=30)
    assert executor.held[job].begin == T0 + HOUR
