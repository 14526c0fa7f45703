"""Jobs through the engine and the slurm executor, against the real single-node Slurm of
scripts/ensure-slurm.sh: greenai records each run's outcome as Slurm accounted it (exit code,
start and end), and, with no energy plugin on this node, an evidence row that says it is an
estimate and why; a daemon restarted mid-run re-attaches by the Slurm job id."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.domain import Job, JobState
from greenai.core.settings import load_settings
from greenai.core.time import utc_now
from greenai.daemon import EvidenceFiles
from greenai.executors.base import Handle
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.records import JobRecord, Submission
from greenai.storage.store import Store
from tests.daemon.helpers import FakeSource, forecast
from tests.executors.helpers import python
from tests.executors.slurm_kit import require_slurm, slurm_executor

pytestmark = pytest.mark.slow


def build_engine(store: Store, home: Path) -> Engine:
    settings = load_settings(env={}, home=home, meters="auto")
    hour_ago = utc_now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    source = FakeSource(forecast([200.0] * 96, start=hour_ago))
    config = EngineConfig((0, 1), home / "runs", settings=settings)  # Slurm picks which
    return Engine(store, slurm_executor(), config, lambda spec: source, EvidenceFiles(settings))


@pytest.fixture
def engine(sqlite_store: Store, tmp_path: Path) -> Iterator[Engine]:
    require_slurm()
    yield build_engine(sqlite_store, tmp_path)


def submit(engine: Engine, command: tuple[str, ...]) -> Job:
    now = utc_now()
    job = Job("slurm-train", now, timedelta(minutes=5), now + timedelta(hours=1),
              command=command, flexible=False, gpus=1, power_kw=0.3)  # fmt: skip
    engine.store.submit(Submission(job), now)
    return job


def tick_until(engine: Engine, job_id: str, done: type | None = None) -> JobRecord:
    give_up = time.monotonic() + 30
    while not (record := engine.store.get(job_id)).state.is_final:
        assert time.monotonic() < give_up, f"still {record.state} after 30 s"
        engine.tick(utc_now())
        time.sleep(0.1)
    return record


def evidence_rows(engine: Engine) -> list[dict[str, str]]:
    assert engine.config.settings is not None
    with engine.config.settings.evidence_path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def slurm_times(handle: Handle) -> tuple[datetime, datetime]:
    status = slurm_executor().attach(handle)
    return status.started_at, status.finished_at  # type: ignore[union-attr]


@pytest.mark.parametrize(("code", "state"), [(0, JobState.SUCCEEDED), (3, JobState.FAILED)])
def test_a_job_runs_in_slurm_and_greenai_records_its_outcome(
    engine: Engine, code: int, state: JobState
) -> None:
    job = submit(engine, python(f"import sys; print('epoch 1'); sys.exit({code})"))
    record = tick_until(engine, job.id)
    assert (record.state, record.exit_code) == (state, code)
    assert record.handle is not None
    handle = Handle.from_json(record.handle)
    assert (handle.executor, handle.ref["job_id"].isdigit()) == ("slurm", True)
    started, finished = slurm_times(handle)
    [row] = evidence_rows(engine)
    assert (row["job_id"], row["exit_code"], row["meter"]) == (job.id, str(code), "estimate")
    assert datetime.fromisoformat(row["started_at"]).astimezone(UTC) == started
    assert datetime.fromisoformat(row["finished_at"]).astimezone(UTC) == finished
    assert "gpu_kwh" in row["estimated"] or "cpu_kwh" in row["estimated"]
    assert "the executor measured no energy" in row["notes"]
    assert "epoch 1" in Path(record.log_path or "").read_text()


def test_a_restarted_daemon_reattaches_to_its_slurm_job(
    engine: Engine, sqlite_store: Store, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    job = submit(
        engine,
        python(f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)"),
    )
    engine.tick(utc_now())
    assert engine.store.get(job.id).state is JobState.RUNNING
    engine.store.heartbeat(engine.config.instance_id, utc_now() - timedelta(hours=1))  # it died
    restarted = build_engine(sqlite_store, tmp_path)
    assert restarted.reconcile(utc_now()) == 1
    events = [event.action for event in sqlite_store.events(job.id)]
    assert "reattach" in events
    gate.touch()
    record = tick_until(restarted, job.id)
    assert (record.state, record.exit_code) == (JobState.SUCCEEDED, 0)


def test_a_planned_job_waits_in_slurm_for_its_start_and_follows_the_replans(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """Issue 11: handed to Slurm ahead, ``PENDING`` with ``Reason=BeginTime`` and ``StartTime``
    equal to greenai's plan; moved there by a re-plan; run at its (new) start; recorded."""
    require_slurm()
    step = timedelta(minutes=30)
    origin = utc_now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    current = (utc_now() - origin) // step

    def clean_at(index: int) -> FakeSource:
        values = [300.0] * 96
        values[index] = 50.0
        return FakeSource(forecast(values, start=origin))

    source = clean_at(current + 3)
    settings = load_settings(env={}, home=tmp_path, meters="auto")
    config = EngineConfig((0, 1), tmp_path / "runs", settings=settings, refresh_every=timedelta(0))
    engine = Engine(
        sqlite_store, slurm_executor(), config, lambda spec: source, EvidenceFiles(settings)
    )
    now = utc_now()
    job = Job("slurm-ahead", now, timedelta(minutes=5), now + timedelta(hours=6),
              command=python("print('trained')"), gpus=1, power_kw=0.3)  # fmt: skip
    sqlite_store.submit(Submission(job), now)

    def pending_start() -> datetime | None:
        record = sqlite_store.get(job.id)
        assert record.state is JobState.SCHEDULED and record.handle is not None
        handle, give_up = Handle.from_json(record.handle), time.monotonic() + 10
        # just submitted, Slurm says Reason=None until its scheduler has looked at the job
        while (queued := slurm_executor().queued(handle)) and queued.reason == "None":
            assert time.monotonic() < give_up, "Slurm gave no reason for 10 s"
            time.sleep(0.2)
        assert queued is not None and (queued.state, queued.reason) == ("PENDING", "BeginTime")
        assert queued.start == record.planned_start
        return queued.start

    engine.tick(utc_now())
    assert pending_start() == origin + (current + 3) * step
    source.answer = clean_at(current + 5).answer  # the forecast changed: the plan moves
    engine.tick(utc_now())
    assert pending_start() == origin + (current + 5) * step
    assert "moved in slurm" in sqlite_store.events(job.id)[-1].reason
    source.answer = clean_at(current).answer  # clean now: it starts now
    record = tick_until(engine, job.id)
    assert (record.state, record.exit_code) == (JobState.SUCCEEDED, 0)
    assert "trained" in Path(record.log_path or "").read_text()
    [row] = evidence_rows(engine)
    assert (row["job_id"], row["exit_code"]) == (job.id, "0")
