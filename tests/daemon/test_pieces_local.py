"""An interruptible job through the engine, the real local executor and its supervisor, on a
fast trace clock: ``examples/interruptible_train.py`` is paused (SIGTERM, it checkpoints) and
resumed (``GREENAI_RESUME=1``) across daemon restarts, while paused and while a piece runs, and
does its whole work exactly once, with one evidence row per piece."""

from __future__ import annotations

import csv
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from greenai.core.domain import Job, JobState
from greenai.core.settings import load_settings
from greenai.core.time import ScaledClock
from greenai.daemon import EvidenceFiles
from greenai.executors.local import LocalExecutor
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.records import JobRecord, Submission
from greenai.storage.store import Store
from tests.daemon.helpers import FakeSource, forecast
from tests.executors.helpers import ESTIMATE

EXAMPLE = Path(__file__).parents[2] / "examples" / "interruptible_train.py"
TRACE_START = datetime(2023, 5, 4, 12, 0, tzinfo=UTC)
SPEED = 600.0  # one wall second is ten minutes of trace time: a step of the forecast
STEPS = 16  # of 0.1 s each: 1.6 wall seconds of work, declared as 16 minutes


class Daemon:
    """An engine over a real local executor; ``restart`` builds a new one, as a restarted
    daemon does, over the same store, runs and evidence (the old one is declared dead)."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store, self.clock = store, ScaledClock(TRACE_START, SPEED)
        # ten-minute steps, cheap and dear in turn: a piece each cheap step
        source = FakeSource(forecast([100.0, 300.0] * 24, TRACE_START, step_minutes=10))
        self.source_for = lambda spec: source
        self.evidence = EvidenceFiles(load_settings(env={}, home=folder))
        self.config = EngineConfig(
            (0,),
            folder / "runs",
            pause_grace_s=10,
            lease=timedelta(hours=1),
            settings=load_settings(env={}, power_watts=100),
        )
        self.executor = LocalExecutor(ESTIMATE, self.clock)
        self.executors = [self.executor]  # each reaps the supervisors it started, at close
        self.engine = self._engine()

    def _engine(self) -> Engine:
        return Engine(self.store, self.executor, self.config, self.source_for, self.evidence)  # type: ignore[arg-type]

    def restart(self) -> None:
        self.store.heartbeat(self.config.instance_id, TRACE_START - timedelta(days=1))
        self.config = replace(self.config, instance_id=str(uuid.uuid4()))
        self.executor = LocalExecutor(ESTIMATE, self.clock)
        self.executors.append(self.executor)
        self.engine = self._engine()
        self.engine.reconcile(self.clock.now())

    def close(self) -> None:
        self.engine.drain(self.clock, grace_s=0)  # stops a run a failed test left behind
        for executor in self.executors:
            executor.close(timeout=10)

    def evidence_rows(self) -> list[dict[str, str]]:
        with self.evidence.settings.evidence_path.open(encoding="utf-8", newline="") as file:
            return list(csv.DictReader(file))

    def tick_until(self, job_id: str, done: object, give_up_s: float = 30) -> JobRecord:
        """Tick every 50 ms until ``done(record)`` holds."""
        stop = time.monotonic() + give_up_s
        while True:
            self.engine.tick(self.clock.now())
            record = self.store.get(job_id)
            if done(record):  # type: ignore[operator]
                return record
            assert time.monotonic() < stop, f"still {record.state} after {give_up_s} s"
            time.sleep(0.05)


def test_the_example_is_paused_and_resumed_across_restarts_and_works_once(
    sqlite_store: Store, tmp_path: Path
) -> None:
    daemon = Daemon(sqlite_store, tmp_path)
    steps, checkpoint = tmp_path / "steps.txt", tmp_path / "checkpoint.json"
    command = (sys.executable, str(EXAMPLE), "--checkpoint", str(checkpoint))
    command += ("--steps", str(STEPS), "--step-seconds", "0.1", "--log", str(steps))
    now = daemon.clock.now()
    job = Job(
        "train",
        now,
        timedelta(minutes=STEPS),
        now + timedelta(hours=6),
        command=command,
        interruptible=True,
    )
    sqlite_store.submit(Submission(job), now)
    try:
        daemon.tick_until(job.id, lambda r: r.state is JobState.PAUSED)
        daemon.restart()  # while paused
        daemon.tick_until(job.id, lambda r: r.state is JobState.RUNNING and r.pieces == 2)
        time.sleep(0.2)
        daemon.restart()  # while its second piece runs: re-attached, not started again
        assert [e.action for e in sqlite_store.events(job.id)][-1] == "reattach"
        done = daemon.tick_until(job.id, lambda r: r.state.is_final)
    finally:
        daemon.close()
    assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
    assert steps.read_text().split() == [str(step) for step in range(STEPS)]  # each step once
    assert done.pieces >= 2
    resumed = (tmp_path / "runs" / job.id / "piece-2" / "output.log").read_text()
    assert "piece 2: resumed at step" in resumed
    rows = [row for row in daemon.evidence_rows() if row["job_id"] == job.id]
    assert len(rows) == done.pieces == len(sqlite_store.runs(job.id))
    assert [row["notes"].split("; ")[-1].split()[1] for row in rows] == [
        str(piece) for piece in range(1, done.pieces + 1)
    ]
