"""engine.tick with a frozen clock, a fake forecast and real subprocesses."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from greenai.core.domain import Action, JobState
from greenai.executors.local import LocalExecutor
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine, run_until_idle
from greenai.storage.records import Event, OnDeadline
from greenai.storage.store import Store
from tests.daemon.helpers import T0, FakeEvidence, FakeMeter, FakeSource, forecast, new_job, python
from tests.fakes import FrozenClock

# Half-hour steps: the cleanest hour starts at T0 + 1h.
VALUES = [300.0, 300.0, 100.0, 100.0, 300.0, 300.0, 300.0, 300.0] * 6


_made: list[Engine] = []


@pytest.fixture(autouse=True)
def _stop_leftover_commands() -> Iterator[None]:
    """Every command a test started is stopped and reaped before the next test."""
    yield
    while _made:
        _made.pop().drain(FrozenClock(T0), grace_s=0)


def make_engine(
    store: Store,
    tmp_path: Path,
    source: object = None,
    slots: tuple[int, ...] = (0,),
    **config: object,
) -> tuple[Engine, FakeEvidence, FakeMeter]:
    evidence, meter = FakeEvidence(), FakeMeter()
    chain = source or FakeSource(forecast(VALUES))
    engine = Engine(
        store,
        LocalExecutor(),
        EngineConfig(slots, tmp_path / "logs", **config),  # type: ignore[arg-type]
        source_for=lambda spec: chain,
        meter_for=lambda gpus: meter,
        evidence=evidence,  # type: ignore[arg-type,return-value]
    )
    _made.append(engine)
    return engine, evidence, meter


def tick_until(engine: Engine, clock: FrozenClock, done: Callable[[], bool]) -> None:
    """Tick at a fixed time until ``done`` (commands are real processes: they take a moment)."""
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, "engine did not get there"
        engine.tick(clock.now())
        time.sleep(0.01)


def test_job_waits_for_the_clean_window_then_runs_and_is_accounted(
    sqlite_store: Store, tmp_path: Path
) -> None:
    engine, evidence, meter = make_engine(sqlite_store, tmp_path)
    clock = FrozenClock(T0)
    job, _ = sqlite_store.submit(new_job(argv=python("print('hi')")))
    engine.tick(clock.now())
    planned = sqlite_store.get(job.id)
    assert planned.state is JobState.SCHEDULED
    assert planned.planned_start == T0 + timedelta(hours=1)
    clock.advance(1800)
    engine.tick(clock.now())
    assert sqlite_store.get(job.id).state is JobState.SCHEDULED  # not yet due
    clock.advance(1800)
    tick_until(engine, clock, lambda: sqlite_store.get(job.id).state.is_final)
    done = sqlite_store.get(job.id)
    assert (done.state, done.exit_code, done.attempts) == (JobState.SUCCEEDED, 0, 1)
    assert done.started_at == T0 + timedelta(hours=1)
    assert Path(done.log_path or "").read_text() == "hi\n"
    assert [e.action for e in sqlite_store.events(job.id)] == ["defer", "dispatch", "finish"]
    assert [d.action for d in evidence.decisions] == [Action.DEFER]
    (record,) = evidence.runs
    assert record.forecast_intensity == pytest.approx(100.0)
    assert record.energy.gpu_kwh == meter.kwh
    (run,) = sqlite_store.runs(job.id)
    assert run.operational_g == pytest.approx(record.operational_g)


def test_never_more_running_jobs_than_gpu_slots(sqlite_store: Store, tmp_path: Path) -> None:
    engine, _, _ = make_engine(sqlite_store, tmp_path, FakeSource(None), slots=(0, 1))
    clock = FrozenClock(T0)
    sleeper = python("import time; time.sleep(0.3)")
    ids = [sqlite_store.submit(new_job(argv=sleeper))[0].id for _ in range(5)]
    peak = 0
    deadline = time.monotonic() + 20
    while not all(sqlite_store.get(i).state.is_final for i in ids):
        assert time.monotonic() < deadline
        engine.tick(clock.now())
        running = sqlite_store.count_by_state()[JobState.RUNNING]
        peak = max(peak, running)
        assert sqlite_store.busy_gpu_ids() <= {0, 1}
        time.sleep(0.02)
    assert peak == 2
    assert all(sqlite_store.get(i).state is JobState.SUCCEEDED for i in ids)


def test_deadline_expire_and_deadline_run(sqlite_store: Store, tmp_path: Path) -> None:
    engine, evidence, _ = make_engine(sqlite_store, tmp_path, slots=())
    clock = FrozenClock(T0)
    deadline = T0 + timedelta(hours=2)
    expiring, _ = sqlite_store.submit(new_job(deadline=deadline, on_deadline=OnDeadline.EXPIRE))
    running, _ = sqlite_store.submit(new_job(deadline=deadline, on_deadline=OnDeadline.RUN))
    engine.tick(clock.now())
    clock.advance(2 * 3600)
    engine.tick(clock.now())
    assert sqlite_store.get(expiring.id).state is JobState.EXPIRED
    late = sqlite_store.get(running.id)
    assert late.state is JobState.SCHEDULED  # no free slot, but still going to run
    assert late.planned_start == clock.now()
    assert Action.EXPIRE in [d.action for d in evidence.decisions]


def test_a_failing_stage_is_recorded_and_the_others_still_run(
    sqlite_store: Store, tmp_path: Path
) -> None:
    class Broken:
        def forecast(self, now: object, horizon: object) -> None:
            raise RuntimeError("bug in a provider")

    engine, _, _ = make_engine(sqlite_store, tmp_path, Broken())
    job, _ = sqlite_store.submit(new_job())
    engine.tick(T0)
    assert engine.stats.stage_errors == {"refresh": 1}
    assert "bug in a provider" in (engine.stats.last_error or "")
    assert sqlite_store.get(job.id).state is not JobState.QUEUED  # planned blind, and started


def test_provider_errors_are_counted_and_the_cache_kept(
    sqlite_store: Store, tmp_path: Path
) -> None:
    source = FakeSource(forecast(VALUES, fallback="uk:13"))
    engine, _, _ = make_engine(sqlite_store, tmp_path, source, refresh_every=timedelta(0))
    engine.tick(T0)
    source.answer = None
    engine.tick(T0 + timedelta(minutes=1))
    assert (engine.stats.provider_errors, engine.stats.fallbacks) == (1, 1)
    assert engine.forecast() is not None and engine.forecast().values[0] == 300.0  # type: ignore[union-attr]


def test_cancel_stops_a_running_command(sqlite_store: Store, tmp_path: Path) -> None:
    engine, _, _ = make_engine(sqlite_store, tmp_path, FakeSource(None))
    clock = FrozenClock(T0)
    job, _ = sqlite_store.submit(new_job(argv=python("import time; time.sleep(30)")))
    tick_until(engine, clock, lambda: sqlite_store.get(job.id).state is JobState.RUNNING)
    sqlite_store.request_cancel(job.id, clock.now())
    tick_until(engine, clock, lambda: sqlite_store.get(job.id).state.is_final)
    done = sqlite_store.get(job.id)
    assert (done.state, done.exit_code) == (JobState.CANCELLED, -15)


def test_a_command_that_cannot_start_fails_its_job(sqlite_store: Store, tmp_path: Path) -> None:
    engine, _, _ = make_engine(sqlite_store, tmp_path, FakeSource(None))
    job, _ = sqlite_store.submit(new_job(argv=("/no/such/command",)))
    engine.tick(T0)
    failed = sqlite_store.get(job.id)
    assert failed.state is JobState.FAILED
    assert "cannot start" in sqlite_store.events(job.id)[-1].reason
    assert sqlite_store.busy_gpu_ids() == set()


def _orphan(store: Store, attempts: int, pid: int | None = None) -> str:
    job, _ = store.submit(new_job())
    store.transition(
        job.id,
        JobState.QUEUED,
        JobState.RUNNING,
        Event(T0, "dispatch", "x"),
        attempts=attempts,
        gpu_ids=[0],
        pid=pid,
    )
    return job.id


def test_reconcile_requeues_within_budget_else_fails(sqlite_store: Store, tmp_path: Path) -> None:
    engine, _, _ = make_engine(sqlite_store, tmp_path, retry_budget=1)
    first, second = _orphan(sqlite_store, 1), _orphan(sqlite_store, 2)
    assert engine.reconcile(T0) == 2
    requeued, failed = sqlite_store.get(first), sqlite_store.get(second)
    assert (requeued.state, requeued.gpu_ids, requeued.pid) == (JobState.QUEUED, (), None)
    assert failed.state is JobState.FAILED
    assert "budget" in sqlite_store.events(second)[-1].reason
    assert sqlite_store.events(first)[-1].action == "reconcile"
    assert sqlite_store.busy_gpu_ids() == set()


def test_drain_requeues_what_outlives_the_grace(sqlite_store: Store, tmp_path: Path) -> None:
    engine, _, _ = make_engine(sqlite_store, tmp_path, FakeSource(None), retry_budget=0)
    clock = FrozenClock(T0)
    job, _ = sqlite_store.submit(new_job(argv=python("import time; time.sleep(30)")))
    tick_until(engine, clock, lambda: sqlite_store.get(job.id).state is JobState.RUNNING)
    waiting, _ = sqlite_store.submit(new_job())
    engine.drain(clock, grace_s=0.2)
    assert sqlite_store.get(job.id).state is JobState.QUEUED
    engine.tick(clock.now())
    assert sqlite_store.get(waiting.id).state is not JobState.RUNNING  # dispatching stopped


def test_run_until_idle_finishes_everything(sqlite_store: Store, tmp_path: Path) -> None:
    engine, _, _ = make_engine(sqlite_store, tmp_path, slots=(0, 1))
    clock = FrozenClock(T0)
    ids = [sqlite_store.submit(new_job(argv=("true",)))[0].id for _ in range(3)]

    class SlowClock(FrozenClock):
        def wait(self, seconds: float, cancel: object = None) -> bool:
            time.sleep(0.02)  # commands are real; give them a moment
            return super().wait(seconds)

    slow = SlowClock(clock.now())
    assert run_until_idle(engine, slow, step_s=600, max_ticks=500) < 500
    assert all(sqlite_store.get(i).state is JobState.SUCCEEDED for i in ids)
