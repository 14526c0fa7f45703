"""The REST API on a real uvicorn (127.0.0.1) over a temporary SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from greenai.api import ApiDeps, create_app
from greenai.core.domain import JobState
from greenai.executors.local import LocalExecutor
from greenai.meters.config import MeterConfig
from greenai.policies.registry import policy_names
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.records import Event
from greenai.storage.store import Store
from greenai.storage.writer import SubmitWriter
from tests.api.conftest import FULL
from tests.daemon.conftest import LiveServer
from tests.daemon.helpers import T0, FakeSource, forecast
from tests.fakes import FrozenClock

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOB = {"command": ["python", "train.py"], "duration": "1h", "max_delay": "6h"}
Serve = Callable[..., httpx.Client]


@dataclass
class Api:
    client: httpx.Client  # sends the token on every request, as a configured client does
    anonymous: httpx.Client  # sends none
    engine: Engine
    store: Store
    clock: FrozenClock


@pytest.fixture
def api(sqlite_store: Store, tmp_path: Path) -> Iterator[Api]:
    engine = Engine(
        sqlite_store,
        LocalExecutor(MeterConfig(meters="estimate", power_watts=100.0)),
        EngineConfig((0, 1), tmp_path / "runs"),
        source_for=lambda spec: FakeSource(forecast([300.0, 300.0, 100.0, 100.0] * 24)),
    )
    evidence = tmp_path / "evidence.csv"
    evidence.write_text("run_id,job_id\nr1,j1\n")
    writer = SubmitWriter(sqlite_store)  # submissions go through group commit, as in the daemon
    writer.start()
    clock = FrozenClock(T0)
    deps = ApiDeps(
        sqlite_store,
        SecretStr(TOKEN),
        clock,
        gpu_slots=2,
        evidence_path=evidence,
        engine=engine,
        writer=writer,
        tick_every=timedelta(seconds=10),
    )
    try:
        with (
            LiveServer(create_app(deps)) as server,
            httpx.Client(base_url=server.url, headers=AUTH) as client,
            httpx.Client(base_url=server.url) as anonymous,
        ):
            yield Api(client, anonymous, engine, sqlite_store, clock)
    finally:
        writer.stop()
        engine.drain(FrozenClock(T0), grace_s=0)


@pytest.fixture
def serve(sqlite_store: Store) -> Iterator[Serve]:
    """An app over the store with the given ``ApiDeps`` options (default: no token, no
    writer)."""
    servers: list[LiveServer] = []

    def start(**options: Any) -> httpx.Client:
        server = LiveServer(create_app(ApiDeps(sqlite_store, clock=FrozenClock(T0), **options)))
        servers.append(server.__enter__())
        return httpx.Client(base_url=server.url)

    yield start
    for server in servers:
        server.__exit__()


def failing_fields(response: httpx.Response) -> list[object]:
    assert response.status_code == 422, response.text
    return [error["loc"][-1] for error in response.json()["detail"]]


# -- submitting ------------------------------------------------------------------------------


def test_submit_list_show_cancel(api: Api) -> None:
    client = api.client
    created = client.post("/jobs", json={**JOB, "project": "nlp", "gpus": 2}, headers=AUTH)
    assert created.status_code == 201, created.text
    job = created.json()
    assert (job["state"], job["name"], job["gpus"], job["duration_s"]) == (
        "queued",
        "python",
        2,
        3600.0,
    )
    assert (job["flexible"], job["policy"], job["threshold"]) == (True, None, None)
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


def test_a_submitted_job_is_stored_as_the_api_returned_it(api: Api) -> None:
    body = {**FULL, "provider": "uk:13,egrid:RFCE", "env": {"A": "héllo"}}
    returned = api.client.post("/jobs", json=body, headers=AUTH).json()
    stored = api.store.get(returned["id"]).job
    assert (stored.name, stored.command, stored.gpus) == ("fine-tune", ("python", "train.py"), 2)
    assert (stored.interruptible, stored.flexible, str(stored.on_deadline)) == (
        True,
        False,
        "expire",
    )
    assert (stored.policy, stored.threshold, stored.project, stored.provider) == (
        "window-once",
        120.5,
        "nlp",
        "uk:13,egrid:RFCE",
    )
    assert (stored.cwd, stored.env, stored.power_kw) == ("/srv/runs", {"A": "héllo"}, 0.0)
    assert (stored.submitted_at, stored.duration) == (T0, timedelta(hours=1))
    assert (stored.max_runtime, returned["max_runtime_s"]) == (timedelta(hours=2), 7200.0)
    for name in ("flexible", "policy", "threshold", "on_deadline", "interruptible"):
        assert returned[name] == body[name]


@pytest.mark.parametrize("flexible", [True, False])
def test_flexible_round_trips(api: Api, flexible: bool) -> None:
    created = api.client.post("/jobs", json={**JOB, "flexible": flexible}, headers=AUTH).json()
    assert created["flexible"] is flexible
    assert api.client.get(f"/jobs/{created['id']}").json()["flexible"] is flexible
    assert api.client.get("/jobs").json()["items"][0]["flexible"] is flexible
    assert api.store.get(created["id"]).job.flexible is flexible


def test_every_submission_gets_a_fresh_id(api: Api) -> None:
    ids = {api.client.post("/jobs", json=JOB, headers=AUTH).json()["id"] for _ in range(3)}
    assert len(ids) == 3
    assert api.client.get("/jobs").json()["total"] == 3


def test_every_state_change_needs_the_token(api: Api) -> None:
    client = api.anonymous
    assert client.post("/jobs", json=JOB).status_code == 401
    wrong = client.post("/jobs", json=JOB, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert client.post("/jobs/x/cancel").status_code == 401
    assert api.client.get("/jobs").json()["total"] == 0  # nothing half-written


@pytest.mark.parametrize("path", ["/jobs", "/jobs/x", "/plan", "/evidence.csv"])
def test_reads_of_jobs_plans_and_evidence_need_the_token(api: Api, path: str) -> None:
    refused = api.anonymous.get(path)
    assert refused.status_code == 401, refused.text
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    wrong = api.anonymous.get(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert api.client.get(path).status_code in (200, 404)


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/docs", "/openapi.json"])
def test_health_metrics_and_docs_stay_open(api: Api, path: str) -> None:
    assert api.anonymous.get(path).status_code == 200


def test_intensity_stays_open(api: Api) -> None:
    assert api.anonymous.get("/intensity").status_code == 404  # no forecast yet, but no 401
    api.engine.tick(T0)
    assert api.anonymous.get("/intensity").status_code == 200


def test_public_read_lets_reads_skip_the_token_but_not_writes(serve: Serve, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence.csv"
    evidence.write_text("run_id\n")
    options = {"token": SecretStr(TOKEN), "public_read": True, "evidence_path": evidence}
    with serve(**options) as client:
        job = client.post("/jobs", json=JOB, headers=AUTH).json()
        assert client.post("/jobs", json=JOB).status_code == 401
        assert client.post(f"/jobs/{job['id']}/cancel").status_code == 401
        reads = [client.get(path) for path in ("/jobs", f"/jobs/{job['id']}", "/plan")]
        assert [r.status_code for r in reads] == [200, 200, 200]
        assert reads[0].json()["items"][0]["command"] == JOB["command"]
        assert client.get("/evidence.csv").text == "run_id\n"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"command": [], "duration": 60}, "command"),
        ({"command": [""], "duration": 60}, "command"),
        ({"command": ["x"], "duration": "soon"}, "duration"),
        ({"command": ["x"], "duration": 60, "gpus": 0}, "gpus"),
        ({"command": ["x"], "duration": 60, "gpus": 3}, "gpus"),
        ({"command": ["x"], "duration": 60, "deadline": "2020-01-01T00:00:00Z"}, "deadline"),
        ({"command": ["x"], "duration": 60, "deadline": "2030-01-01T00:00:00"}, "deadline"),
        (
            {"command": ["x"], "duration": 60, "deadline": "2030-01-01T00:00:00Z", "max_delay": 5},
            "max_delay",
        ),
        ({"command": ["x"], "duration": 60, "on_deadline": "maybe"}, "on_deadline"),
        ({"command": ["x"], "duration": 60, "threshold": -1}, "threshold"),
        ({"command": ["x"], "duration": 60, "surprise": 1}, "surprise"),
        ({"command": ["x"], "duration": 60, "policy": "oracle"}, "policy"),
        ({"command": ["x"], "duration": 60, "policy": "no-such-policy"}, "policy"),
        ({"command": ["x"], "duration": 60, "policy": "threshold"}, "threshold"),
        ({"command": ["x"], "duration": 60, "flexible": "sometimes"}, "flexible"),
    ],
)
def test_bad_bodies_name_the_failing_field(api: Api, body: dict[str, object], field: str) -> None:
    response = api.client.post("/jobs", json=body, headers=AUTH)
    assert field in failing_fields(response)
    assert api.client.get("/jobs").json()["total"] == 0


# -- policies --------------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    name = ref.rsplit("/", 1)[-1]
    return _resolve(schema, schema["components"]["schemas"][name])


def test_the_openapi_policy_enum_is_the_registrys_online_policies(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    policy = schema["components"]["schemas"]["JobIn"]["properties"]["policy"]
    choices = [_resolve(schema, option) for option in policy.get("anyOf", [policy])]
    [enum] = [option["enum"] for option in choices if "enum" in option]
    assert enum == list(policy_names(online=True))
    offline = set(policy_names()) - set(policy_names(online=True))
    assert offline and not offline & set(enum)  # e.g. the oracle needs the future


@pytest.mark.parametrize("name", policy_names(online=True))
def test_every_online_policy_is_accepted(api: Api, name: str) -> None:
    response = api.client.post(
        "/jobs", json={**JOB, "policy": name, "threshold": 100.0}, headers=AUTH
    )
    assert response.status_code == 201, response.text
    assert response.json()["policy"] == name
    assert api.store.get(response.json()["id"]).job.policy == name


@pytest.mark.parametrize("name", sorted(set(policy_names()) - set(policy_names(online=True))))
def test_an_offline_policy_is_refused_naming_policy(api: Api, name: str) -> None:
    response = api.client.post("/jobs", json={**JOB, "policy": name}, headers=AUTH)
    assert failing_fields(response) == ["policy"]
    assert api.client.get("/jobs").json()["total"] == 0


def test_the_threshold_policy_without_any_threshold_is_refused(api: Api) -> None:
    response = api.client.post("/jobs", json={**JOB, "policy": "threshold"}, headers=AUTH)
    assert failing_fields(response) == ["threshold"]
    assert "threshold" in response.json()["detail"][0]["msg"]
    assert api.client.get("/jobs").json()["total"] == 0


def test_the_threshold_policy_with_the_jobs_own_threshold_is_accepted(api: Api) -> None:
    body = {**JOB, "policy": "threshold", "threshold": 150.0}
    created = api.client.post("/jobs", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    assert (created.json()["policy"], created.json()["threshold"]) == ("threshold", 150.0)


def test_the_threshold_policy_is_accepted_with_the_daemons_default_threshold(
    serve: Serve,
) -> None:
    with serve(default_threshold=150.0) as client:
        created = client.post("/jobs", json={**JOB, "policy": "threshold"})
    assert created.status_code == 201, created.text
    assert (created.json()["policy"], created.json()["threshold"]) == ("threshold", None)


def test_a_daemon_planning_with_threshold_needs_a_threshold_for_jobs_naming_no_policy(
    serve: Serve,
) -> None:
    with serve(default_policy="threshold") as client:
        refused = client.post("/jobs", json=JOB)
        accepted = client.post("/jobs", json={**JOB, "threshold": 90.0})
        other = client.post("/jobs", json={**JOB, "policy": "window"})
    assert failing_fields(refused) == ["threshold"]
    assert (accepted.status_code, other.status_code) == (201, 201)


# -- reading, cancelling ---------------------------------------------------------------------


def test_unknown_ids_are_404(api: Api) -> None:
    assert api.client.get("/jobs/nope").status_code == 404
    assert api.client.post("/jobs/nope/cancel", headers=AUTH).status_code == 404


def test_cancel_of_a_running_job_is_accepted_and_flags_it(api: Api) -> None:
    job = api.client.post("/jobs", json=JOB, headers=AUTH).json()
    api.store.transition(job["id"], JobState.QUEUED, JobState.RUNNING, Event(T0, "go", "test"))
    response = api.client.post(f"/jobs/{job['id']}/cancel", headers=AUTH)
    assert response.status_code == 202, response.text
    assert (response.json()["state"], response.json()["cancel_requested"]) == ("running", True)
    assert api.store.get(job["id"]).cancel_requested


def test_jobs_page_newest_first(api: Api) -> None:
    ids = []
    for _ in range(5):
        ids.append(api.client.post("/jobs", json=JOB, headers=AUTH).json()["id"])
        api.clock.advance(60)
    page = api.client.get("/jobs", params={"limit": 2, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [item["id"] for item in page["items"]] == [ids[3], ids[2]]
    assert api.client.get("/jobs", params={"limit": 0}).status_code == 422
    assert api.client.get("/jobs", params={"offset": -1}).status_code == 422


def test_concurrent_retries_with_one_idempotency_key_make_one_job(api: Api) -> None:
    headers = {**AUTH, "Idempotency-Key": "retry-1"}
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda _: api.client.post("/jobs", json=JOB, headers=headers), range(16))
        )
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert sorted(r.status_code for r in responses) == [200] * 15 + [201]
    assert api.client.get("/jobs").json()["total"] == 1


def test_plan_intensity_metrics_evidence_health(api: Api) -> None:
    client, engine = api.client, api.engine
    assert client.get("/intensity").status_code == 404  # nothing cached before the first tick
    job = client.post("/jobs", json=JOB, headers=AUTH).json()
    engine.tick(T0)
    plan = client.get("/plan").json()
    assert [j["id"] for j in plan] == [job["id"]]
    assert plan[0]["planned_start"].startswith("2023-05-04T13:00:00")
    [decision] = client.get(f"/jobs/{job['id']}").json()["decisions"]
    assert (decision["action"], decision["from_state"], decision["to_state"]) == (
        "defer",
        "queued",
        "scheduled",
    )
    assert decision["payload"]["job_id"] == job["id"]
    assert decision["payload"]["planned_start"] == "2023-05-04T13:00:00Z"
    assert api.store.get(job["id"]).plan == decision["payload"]
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


def test_healthz_is_degraded_while_a_stage_fails_and_metrics_count_failures(api: Api) -> None:
    def broken(limit: int = 100) -> list[object]:
        raise RuntimeError("database is locked")

    real = api.store.upcoming
    api.store.upcoming = broken  # type: ignore[method-assign,assignment]
    api.engine.tick(api.clock.now())
    health = api.anonymous.get("/healthz").json()
    assert health["status"] == "degraded"
    assert health["problems"] == ["dispatch failed: RuntimeError: database is locked"]
    api.store.upcoming = real  # type: ignore[method-assign]
    api.engine.tick(api.clock.now())
    assert api.anonymous.get("/healthz").json() == {
        **api.anonymous.get("/healthz").json(),
        "status": "ok",
        "problems": [],
    }
    metrics = api.anonymous.get("/metrics").text
    for counter in ("start_failures", "lost_runs", "accounting_failures"):
        assert f"greenai_{counter}_total 0.0" in metrics
    assert 'greenai_tick_errors_total{stage="dispatch"} 1.0' in metrics


def test_evidence_csv_is_empty_before_the_first_run(serve: Serve, tmp_path: Path) -> None:
    with serve(evidence_path=tmp_path / "missing.csv") as client:
        response = client.get("/evidence.csv")
    assert response.status_code == 200 and response.text == ""


def test_without_a_token_configured_localhost_needs_none(  # and without a writer
    serve: Serve,
) -> None:
    with serve(default_max_delay=timedelta(hours=2)) as client:
        response = client.post("/jobs", json={"command": ["x"], "duration": 60})
    assert response.status_code == 201
    assert response.json()["deadline"].startswith("2023-05-04T14:01:00")


def test_healthz_is_degraded_while_the_loop_has_gone_quiet(api: Api) -> None:
    """The loop runs in its own process: a hung one shows, a slow re-plan does not."""
    api.engine.tick(api.clock.now())
    api.clock.advance(45)  # past three ticks, but a long re-plan of a huge queue takes that
    assert api.anonymous.get("/healthz").json()["status"] == "ok"
    api.clock.advance(255)
    health = api.anonymous.get("/healthz").json()
    assert (health["status"], health["problems"]) == ("degraded", ["no tick for 300 s"])
    api.engine.tick(api.clock.now())
    assert api.anonymous.get("/healthz").json()["status"] == "ok"
