"""Issue 9 #5: a run is recorded over its command's real window, not the engine's ticks.

The audit saw a 0.5 s job recorded as 9.99 s with a 10 s tick (and `print(1)` as 58 s with the
default 60 s tick), over-counting energy and embodied share. The per-job supervisor starts the
meter before the command and reads it at the command's exit, so the window between the tick
that starts a job and the tick that reaps it must not count."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from greenai.core.domain import Job, JobState
from greenai.core.settings import load_settings
from greenai.core.time import SystemClock, utc_now
from greenai.executors.local import LocalExecutor
from greenai.meters.config import MeterConfig
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.records import Submission
from greenai.storage.store import Store
from tests.daemon.helpers import FakeSource, forecast
from tests.executors.helpers import python

TICK_GAP_S = 3.0  # between the tick that starts the job and the one that reaps it
WATTS = 3600.0  # the declared draw of the estimate meter: 1 Wh per second
METER_SLACK_S = 0.5  # the meter's start and read around the command; far under TICK_GAP_S


@pytest.fixture
def engine(sqlite_store: Store, tmp_path: Path) -> Iterator[Engine]:
    hour_ago = utc_now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    settings = load_settings(env={}, power_watts=WATTS)
    source = FakeSource(forecast([200.0] * 96, start=hour_ago))
    executor = LocalExecutor(MeterConfig(meters="estimate", power_watts=WATTS))
    config = EngineConfig((0,), tmp_path / "runs", settings=settings)
    engine = Engine(sqlite_store, executor, config, source_for=lambda spec: source)
    yield engine
    engine.drain(SystemClock(), grace_s=0)
    executor.close(timeout=10)


def test_a_short_job_is_recorded_over_its_own_run_not_the_ticks(engine: Engine) -> None:
    now = utc_now()
    job = Job("quick", now, timedelta(minutes=1), now + timedelta(hours=1),
              command=python("print(1)"), flexible=False)  # fmt: skip
    engine.store.submit(Submission(job), now)
    dispatched = utc_now()
    engine.tick(dispatched)
    assert engine.store.get(job.id).state is JobState.RUNNING
    time.sleep(TICK_GAP_S)
    give_up = time.monotonic() + 60
    while not (record := engine.store.get(job.id)).state.is_final:
        assert time.monotonic() < give_up
        engine.tick(utc_now())
        time.sleep(0.05)
    assert record.state is JobState.SUCCEEDED
    [run] = engine.store.runs(job.id)
    ran_s = (run.finished_at - run.started_at).total_seconds()
    assert run.started_at >= dispatched
    assert 0 < ran_s < TICK_GAP_S / 2  # the command's window (a Python start), not the gap
    assert run.energy_kwh is not None
    # The meter starts just before the command and reads just after its output is drained, so
    # its window is the command's plus a few milliseconds, never the seconds between ticks.
    metered_s = run.energy_kwh * 3.6e6 / WATTS
    assert ran_s * 0.95 <= metered_s <= ran_s + METER_SLACK_S
    assert run.embodied_g is not None and run.embodied_g < 0.01
