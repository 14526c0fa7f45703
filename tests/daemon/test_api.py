"""The REST API on a real uvicorn (127.0.0.1) over a temporary SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from greenai.api import ApiDeps, create_app
from greenai.executors.local import LocalExecutor
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.store import Store
from greenai.storage.writer import SubmitWriter
from tests.daemon.conftest import LiveServer
from tests.daemon.helpers import T0, FakeSource, forecast
from tests.fakes import FrozenClock

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOB = {"command": ["python", "train.py"], "duration": "1h", "max_delay": "6h"}


@pytest.fixture
def api(sqlite_store: Store, tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    engine = Engine(
        sqlite_store,
        LocalExecutor(),
        EngineConfig((0, 1), tmp_path / "logs"),
        source_for=lambda spec: FakeSource(forecast([300.0, 300.0, 100.0, 100.0] * 24)),
    )
    evidence = tmp_path / "evidence.csv"
    evidence.write_text("run_id,job_id\nr1,j1\n")
    writer = SubmitWriter(sqlite_store)  # submissions go through group commit, as in the daemon
    writer.start()
    deps = ApiDeps(
        sqlite_store,
        SecretStr(TOKEN),
        FrozenClock(T0),
        gpu_slots=2,
        evidence_path=evidence,
        engine=engine,
        writer=writer,
    )
    with LiveServer(create_app(deps)) as server, httpx.Client(base_url=server.url) as client:
        yield client, engine
    writer.stop()
    engine.drain(FrozenClock(T0), grace_s=0)


def test_submit_list_show_cancel(api: tuple[httpx.Client, Engine]) -> None:
    client, _ = api
    created = client.post("/jobs", json={**JOB, "project": "nlp", "gpus": 2}, headers=AUTH)
    assert created.status_code == 201, created.text
    job = created.json()
    assert (job["state"], job["name"], job["gpus"], job["duration_s"]) == (
        "queued",
        "python",
        2,
        3600.0,
    )
    assert job["deadline"].startswith("2023-05-04T19:00:00")  # T0 + 6h wait + 1h run
    page = client.get("/jobs", params={"state": "queued", "project": "nlp"}).json()
    assert page["total"] == 1 and page["items"][0]["id"] == job["id"]
    assert client.get("/jobs", params={"project": "other"}).json()["total"] == 0
    cancelled = client.post(f"/jobs/{job['id']}/cancel", headers=AUTH)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = client.post(f"/jobs/{job['id']}/cancel", headers=AUTH)
    assert again.status_code == 409
    detail = client.get(f"/jobs/{job['id']}").json()
    assert [d["action"] for d in detail["decisions"]] == ["cancel"]
    assert detail["evidence"] == []


def test_every_state_change_needs_the_token(api: tuple[httpx.Client, Engine]) -> None:
    client, _ = api
    assert client.post("/jobs", json=JOB).status_code == 401
    wrong = client.post("/jobs", json=JOB, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert client.post("/jobs/x/cancel").status_code == 401
    assert client.get("/jobs").json()["total"] == 0  # nothing half-written
    assert client.get("/jobs").status_code == 200  # reading needs no token


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"command": [], "duration": 60}, "command"),
        ({"command": ["x"], "duration": "soon"}, "duration"),
        ({"command": ["x"], "duration": 60, "gpus": 0}, "gpus"),
        ({"command": ["x"], "duration": 60, "gpus": 3}, "gpus"),
        ({"command": ["x"], "duration": 60, "deadline": "2020-01-01T00:00:00Z"}, "deadline"),
        ({"command": ["x"], "duration": 60, "deadline": "2030-01-01T00:00:00"}, "deadline"),
        ({"command": ["x"], "duration": 60, "on_deadline": "maybe"}, "on_deadline"),
        ({"command": ["x"], "duration": 60, "surprise": 1}, "surprise"),
    ],
)
def test_bad_bodies_name_the_failing_field(
    api: tuple[httpx.Client, Engine], body: dict[str, object], field: str
) -> None:
    client, _ = api
    response = client.post("/jobs", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert field in [error["loc"][-1] for error in response.json()["detail"]]
    assert client.get("/jobs").json()["total"] == 0


def test_unknown_ids_are_404(api: tuple[httpx.Client, Engine]) -> None:
    client, _ = api
    assert client.get("/jobs/nope").status_code == 404
    assert client.post("/jobs/nope/cancel", headers=AUTH).status_code == 404


def test_concurrent_retries_with_one_idempotency_key_make_one_job(
    api: tuple[httpx.Client, Engine],
) -> None:
    client, _ = api
    headers = {**AUTH, "Idempotency-Key": "retry-1"}
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda _: client.post("/jobs", json=JOB, headers=headers), range(16))
        )
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert client.get("/jobs").json()["total"] == 1


def test_plan_intensity_metrics_evidence_health(api: tuple[httpx.Client, Engine]) -> None:
    client, engine = api
    assert client.get("/intensity").status_code == 404  # nothing cached before the first tick
    job = client.post("/jobs", json=JOB, headers=AUTH).json()
    engine.tick(T0)
    plan = client.get("/plan").json()
    assert [j["id"] for j in plan] == [job["id"]]
    assert plan[0]["planned_start"].startswith("2023-05-04T13:00:00")
    intensity = client.get("/intensity").json()
    assert (intensity["current"], intensity["source"]) == (300.0, "fake:13")
    assert intensity["forecast"][2]["value"] == 100.0
    metrics = client.get("/metrics").text
    assert 'greenai_jobs{state="scheduled"} 1.0' in metrics
    assert 'greenai_decisions_total{action="defer"} 1.0' in metrics
    assert "greenai_saved_grams_total 0.0" in metrics
    assert "greenai_provider_errors_total 0.0" in metrics
    assert client.get("/evidence.csv").text == "run_id,job_id\nr1,j1\n"
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["ticks"] == 1
    assert "/jobs/{job_id}/cancel" in client.get("/openapi.json").json()["paths"]


def test_without_a_token_configured_localhost_needs_none(  # and without a writer
    sqlite_store: Store,
) -> None:
    deps = ApiDeps(sqlite_store, None, FrozenClock(T0), default_max_delay=timedelta(hours=2))
    with LiveServer(create_app(deps)) as server:
        response = httpx.post(f"{server.url}/jobs", json={"command": ["x"], "duration": 60})
    assert response.status_code == 201
    assert response.json()["deadline"].startswith("2023-05-04T14:01:00")
