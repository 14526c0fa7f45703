"""A job's ``max_runtime`` through the engine, a real local executor and its supervisor: the
run is stopped, and the job fails with an event that names the limit, whatever the command
exited with. Bounds are generous: nothing here depends on how fast the machine is."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.domain import Job, JobState
from greenai.core.settings import load_settings
from greenai.core.time import SystemClock, utc_now
from greenai.executors.local import LocalExecutor
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.records import JobRecord, Submission
from greenai.storage.store import Store
from tests.daemon.helpers import FakeSource, forecast
from tests.executors.helpers import ESTIMATE, python

NOTE = "stopped after its max runtime 0:00:01"


@pytest.fixture
def engine(sqlite_store: Store, tmp_path: Path) -> Iterator[Engine]:
    hour_ago = utc_now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    config = EngineConfig(
        (0,), tmp_path / "runs", grace_s=10, settings=load_settings(env={}, power_watts=100)
    )
    source = FakeSource(forecast([200.0] * 96, start=hour_ago))
    executor = LocalExecutor(ESTIMATE)
    engine = Engine(sqlite_store, executor, config, source_for=lambda spec: source)
    yield engine
    engine.drain(SystemClock(), grace_s=0)  # stops a run a failed test left behind
    executor.close(timeout=10)


def run_to_the_end(engine: Engine, command: tuple[str, ...]) -> JobRecord:
    """Submit a rigid job with a max runtime of one second and tick until it has ended."""
    now = utc_now()
    job = Job(
        "limited",
        now,
        timedelta(minutes=1),
        now + timedelta(hours=1),
        command=command,
        flexible=False,  # starts at the first tick
        max_runtime=timedelta(seconds=1),
    )
    engine.store.submit(Submission(job), now)
    give_up = time.monotonic() + 60
    while not (record := engine.store.get(job.id)).state.is_final:
        assert time.monotonic() < give_up, f"still {record.state} after a minute"
        engine.tick(utc_now())
        time.sleep(0.05)
    return record


def ran_for(record: JobRecord) -> timedelta:
    assert isinstance(record.started_at, datetime) and isinstance(record.finished_at, datetime)
    return record.finished_at - record.started_at


def test_a_job_past_its_max_runtime_is_stopped_and_fails_naming_it(engine: Engine) -> None:
    record = run_to_the_end(engine, python("import time; time.sleep(30)"))
    assert (record.state, record.exit_code) == (JobState.FAILED, 143)
    [fail] = [event for event in engine.store.events(record.id) if event.action == "fail"]
    # the limit first; the meter's notes follow (here: the estimate is not a measurement)
    assert fail.reason.startswith(f"command exited 143: {NOTE}; energy (estimate): estimate")
    assert timedelta(seconds=1) <= ran_for(record) < timedelta(seconds=25)
    [run] = engine.store.runs(record.id)
    assert run.exit_code == 143  # the run is accounted like any other


def test_a_job_that_exits_0_when_stopped_at_its_max_runtime_still_fails(engine: Engine) -> None:
    code = "import signal, sys, time; signal.signal(15, lambda *_: sys.exit(0)); time.sleep(30)"
    record = run_to_the_end(engine, python(code))
    assert (record.state, record.exit_code) == (JobState.FAILED, 0)
    [fail] = [event for event in engine.store.events(record.id) if event.action == "fail"]
    assert fail.reason.startswith(f"command exited 0: {NOTE}; ")
