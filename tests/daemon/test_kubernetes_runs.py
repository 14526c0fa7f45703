"""A job through the engine and the kubernetes executor, against the loopback API server of
recorded responses: it becomes a Job, ends, and its evidence row is an estimate from the
declared power that says where the pod ran and that greenai did not measure it (the suite's
audit fixture then recomputes the row from its inputs)."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from greenai.core.domain import Job, JobState
from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings
from greenai.core.time import SystemClock, utc_now
from greenai.daemon import EvidenceFiles
from greenai.daemon.wiring import EXECUTORS
from greenai.executors.kubernetes import KubernetesExecutor, from_environment
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.records import JobRecord, Submission
from greenai.storage.store import Store
from tests.daemon.helpers import FakeSource, forecast
from tests.executors.k8s_server import FakeKubernetes


@pytest.fixture
def cluster() -> Iterator[FakeKubernetes]:
    with FakeKubernetes() as fake:
        yield fake


@pytest.fixture
def engine(sqlite_store: Store, tmp_path: Path, cluster: FakeKubernetes) -> Iterator[Engine]:
    env = {"GREENAI_K8S_API_URL": cluster.url, "GREENAI_K8S_NAMESPACE": cluster.namespace,
           "GREENAI_K8S_IMAGE": "registry.example.com/train:1.4"}  # fmt: skip
    executor = from_environment(env)
    settings = load_settings(env={}, home=tmp_path, meters="auto")
    hour_ago = utc_now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    source = FakeSource(forecast([200.0] * 96, start=hour_ago))
    config = EngineConfig((0, 1, 2, 3), tmp_path / "runs", settings=settings)
    engine = Engine(sqlite_store, executor, config, lambda spec: source, EvidenceFiles(settings))
    yield engine
    executor.close()


def tick_until_final(engine: Engine, job_id: str, cluster: FakeKubernetes, code: int) -> JobRecord:
    give_up = time.monotonic() + 30
    while not (record := engine.store.get(job_id)).state.is_final:
        assert time.monotonic() < give_up, f"still {record.state} after 30 s"
        engine.tick(utc_now())
        for name, job in cluster.jobs.items():
            if job.phase == "running":
                cluster.finish(name, code)
        time.sleep(0.05)
    return record


def submit(engine: Engine, **fields: object) -> Job:
    """A job due in an hour; rigid (it starts at the first tick) unless ``fields`` say."""
    now = utc_now()
    fields.setdefault("flexible", False)
    job = Job("k8s-train", now, timedelta(minutes=5), now + timedelta(hours=1),
              command=("python", "train.py"), **fields)  # type: ignore[arg-type]  # fmt: skip
    engine.store.submit(Submission(job), now)
    return job


def evidence_rows(engine: Engine) -> list[dict[str, str]]:
    assert engine.config.settings is not None
    with engine.config.settings.evidence_path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def test_a_job_runs_as_a_kubernetes_job_and_its_row_is_an_estimate_from_declared_power(
    engine: Engine, cluster: FakeKubernetes
) -> None:
    job = submit(engine, gpus=2, power_kw=0.6)
    record = tick_until_final(engine, job.id, cluster, 0)
    assert (record.state, record.exit_code) == (JobState.SUCCEEDED, 0)
    [create] = cluster.made("POST", "/jobs")
    container = create.body["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": "2"}}
    [row] = evidence_rows(engine)
    assert (row["job_id"], row["exit_code"], row["gpu_count"]) == (job.id, "0", "2")
    assert (row["meter"], row["gpu_method"], row["cpu_method"]) == (
        "estimate",
        "declared",
        "included",
    )
    assert row["estimated"].split(";")[0] == "gpu_kwh"
    assert "pod greenai-k8s-train-1-x7k2p on node gpu-node-3 with 2 GPU(s)" in row["notes"]
    assert "not measured by greenai" in row["notes"]
    assert "estimate, not a measurement: declared 600 W for the whole job" in row["notes"]
    hours = float(row["duration_s"]) / 3600
    assert float(row["gpu_kwh"]) == pytest.approx(0.6 * hours, rel=1e-3, abs=1e-9)


def test_a_failed_pod_fails_the_job_with_its_exit_code(
    engine: Engine, cluster: FakeKubernetes
) -> None:
    job = submit(engine, gpus=1)
    record = tick_until_final(engine, job.id, cluster, 3)
    assert (record.state, record.exit_code) == (JobState.FAILED, 3)
    [row] = evidence_rows(engine)
    assert row["meter"] == "estimate" and row["exit_code"] == "3"


def test_the_daemon_wiring_names_the_kubernetes_executor(
    monkeypatch: pytest.MonkeyPatch, cluster: FakeKubernetes
) -> None:
    settings = load_settings(env={}, executor="kubernetes")
    monkeypatch.delenv("GREENAI_K8S_IMAGE", raising=False)
    with pytest.raises(ConfigError, match="GREENAI_K8S_IMAGE"):
        EXECUTORS["kubernetes"](settings, SystemClock())
    monkeypatch.setenv("GREENAI_K8S_IMAGE", "registry.example.com/train:1.4")
    monkeypatch.setenv("GREENAI_K8S_API_URL", cluster.url)
    executor = EXECUTORS["kubernetes"](settings, SystemClock())
    assert isinstance(executor, KubernetesExecutor)
    executor.close()


def test_an_interruptible_job_runs_in_pieces_and_pauses_at_shutdown(
    engine: Engine, cluster: FakeKubernetes
) -> None:
    job = submit(engine, gpus=1, interruptible=True, flexible=True, power_kw=0.3)
    give_up = time.monotonic() + 30
    while engine.store.get(job.id).state is not JobState.RUNNING:
        assert time.monotonic() < give_up, "the first piece never started"
        engine.tick(utc_now())
        time.sleep(0.05)
    [create] = cluster.made("POST", "/jobs")
    assert create.body["metadata"]["name"] == "greenai-k8s-train-1-p1"
    engine.drain(SystemClock(), grace_s=10)
    record = engine.store.get(job.id)
    assert (record.state, record.pieces) == (JobState.PAUSED, 1)
    [delete] = cluster.made("DELETE", "/jobs/")
    assert delete.body["propagationPolicy"] == "Foreground"
    [row] = evidence_rows(engine)
    assert row["meter"] == "estimate" and row["gpu_method"] == "declared"
    assert row["notes"].endswith("piece 1 of an interruptible job, paused: more pieces follow")
