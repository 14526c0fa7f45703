"""A hung provider must not stall the loop: forecasts are fetched off its thread, one fetch per
source at a time, and a history for accounting is waited for only up to its deadline."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from greenai.core.domain import Forecast, JobState
from greenai.storage.store import Store
from tests.daemon.helpers import T0, FakeSource, forecast
from tests.daemon.test_engine import VALUES, Rig


class Hanging(FakeSource):
    """A source whose calls block until released: a provider that stopped answering."""

    def __init__(self, answer: Forecast) -> None:
        super().__init__(answer)
        self.release = threading.Event()
        self.history_calls = 0

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast:
        self.calls.append(now)
        self.release.wait(10)
        return super().forecast(now, horizon)

    def history(self, start: datetime, end: datetime) -> Forecast:
        self.history_calls += 1
        self.release.wait(10)
        return super().history(start, end)


def background(sqlite_store: Store, tmp_path: Path, source: FakeSource) -> Rig:
    return Rig(
        sqlite_store,
        tmp_path,
        source,
        background_fetch=True,
        history_deadline_s=0.2,
        refresh_every=timedelta(0),
    )


def test_a_hung_provider_does_not_delay_dispatch(sqlite_store: Store, tmp_path: Path) -> None:
    source = Hanging(forecast(VALUES))
    rig = background(sqlite_store, tmp_path, source)
    job = rig.submit()
    began = time.monotonic()
    for _ in range(3):
        rig.tick()
    assert time.monotonic() - began < 2.0
    assert len(source.calls) == 1  # one fetch in flight per source, not one per tick
    assert rig.state(job) is JobState.RUNNING  # planned blind meanwhile, and started
    source.release.set()
    deadline = time.monotonic() + 5
    while rig.engine.forecast() is None:
        assert time.monotonic() < deadline, "the late answer never arrived"
        time.sleep(0.01)
    rig.engine.close()


def test_the_forecast_that_arrives_late_is_planned_with_on_the_next_tick(
    sqlite_store: Store, tmp_path: Path
) -> None:
    source = Hanging(forecast(VALUES))
    rig = background(sqlite_store, tmp_path, source)
    rig.config.gpu_slots = ()  # nothing starts: watch the plan
    job = rig.submit()
    rig.tick()
    assert rig.store.get(job).planned_start == T0  # blind: start at once
    source.release.set()
    deadline = time.monotonic() + 5
    while rig.engine.forecast() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    rig.tick()
    assert rig.store.get(job).planned_start == T0 + timedelta(hours=1)  # the clean window
    rig.engine.close()


def test_a_hung_history_is_waited_for_only_up_to_its_deadline(
    sqlite_store: Store, tmp_path: Path
) -> None:
    source = Hanging(forecast(VALUES))
    source.release.set()  # forecasts answer; only the history will hang
    rig = background(sqlite_store, tmp_path, source)
    job = rig.submit(deadline=T0 + timedelta(hours=1))
    rig.tick()
    deadline = time.monotonic() + 5
    while rig.engine.forecast() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
        rig.tick()
    rig.tick()
    assert rig.state(job) is JobState.RUNNING
    source.release.clear()
    rig.executor.finish(job, 0)
    began = time.monotonic()
    rig.tick()
    assert time.monotonic() - began < 2.0
    assert rig.state(job) is JobState.SUCCEEDED and source.history_calls == 1
    [row] = rig.files.rows()
    assert row["actual_intensity"] != ""  # the cached forecast stood in
    source.release.set()
    rig.engine.close()
