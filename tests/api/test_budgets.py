"""GET/PUT /budgets: the token guards writes (and reads, unless reads are public), bodies are
validated field by field, and reads and /metrics show each budget's limit and use."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from greenai.core.domain import JobState
from greenai.storage.records import Event
from greenai.storage.store import Store
from tests.api.conftest import AUTH, TOKEN, Serve
from tests.daemon.helpers import T0, new_job, run_summary

MIDNIGHT = "2023-05-04T00:00:00Z"  # T0 is noon


def test_put_creates_and_changes_a_budget_and_get_reads_it(client: httpx.Client) -> None:
    assert client.get("/budgets").json() == []
    assert client.get("/budgets/nlp").status_code == 404
    put = client.put("/budgets/nlp", json={"kg": 50, "period": "7d"})
    assert put.status_code == 200, put.text
    body = put.json()
    assert (body["project"], body["kg"], body["period"], body["period_s"]) == (
        "nlp", 50.0, "7d", 7 * 86400.0,
    )  # fmt: skip
    assert (body["period_start"], body["period_end"]) == (MIDNIGHT, "2023-05-11T00:00:00Z")
    assert (body["used_kg"], body["left_kg"]) == (0.0, 50.0)
    changed = client.put("/budgets/nlp", json={"kg": 20.5, "period": 86400}).json()
    assert (changed["kg"], changed["period"], changed["period_start"]) == (20.5, "1d", MIDNIGHT)
    assert client.get("/budgets/nlp").json() == changed
    assert [b["project"] for b in client.get("/budgets").json()] == ["nlp"]


def test_writes_need_the_token_and_reads_too_unless_public(serve: Serve) -> None:
    client, _ = serve(token=SecretStr(TOKEN))
    body = {"kg": 1, "period": "1d"}
    assert client.put("/budgets/nlp", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.put("/budgets/nlp", json=body, headers=wrong).status_code == 401
    assert client.get("/budgets").status_code == 401
    assert client.put("/budgets/nlp", json=body, headers=AUTH).status_code == 200
    assert client.get("/budgets", headers=AUTH).status_code == 200
    public, _ = serve(token=SecretStr(TOKEN), public_read=True)
    assert public.get("/budgets/nlp").json()["kg"] == 1.0
    assert public.put("/budgets/nlp", json=body).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kg": 0, "period": "7d"}, "kg"),
        ({"kg": -3, "period": "7d"}, "kg"),
        ({"kg": "nan", "period": "7d"}, "kg"),
        ({"kg": "inf", "period": "7d"}, "kg"),
        ({"period": "7d"}, "kg"),
        ({"kg": 5, "period": "0s"}, "period"),
        ({"kg": 5, "period": "367d"}, "period"),
        ({"kg": 5, "period": "a week"}, "period"),
        ({"kg": 5, "period": -60}, "period"),
        ({"kg": 5, "period": True}, "period"),
        ({"kg": 5}, "period"),
        ({"kg": 5, "period": "7d", "start": "2023-01-01T00:00:00Z"}, "start"),
    ],
)
def test_a_bad_budget_is_a_422_naming_the_field(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = client.put("/budgets/nlp", json=body)
    assert response.status_code == 422, response.text
    assert any(error["loc"][-1] == field for error in response.json()["detail"])
    assert client.get("/budgets").json() == []


def test_a_project_name_is_checked(client: httpx.Client) -> None:
    assert client.put(f"/budgets/{'x' * 201}", json={"kg": 1, "period": "1d"}).status_code == 422


def test_used_counts_measured_runs_and_admitted_jobs_and_metrics_show_it(
    serve: Serve, sqlite_store: Store
) -> None:
    client, _ = serve(power_watts=None)
    sqlite_store.put_budget("nlp", 1000.0, timedelta(days=1), T0)
    finished, _ = sqlite_store.submit(new_job(project="nlp"), T0)
    planned = Event(T0, "defer", "x")
    sqlite_store.transition(finished.id, JobState.QUEUED, JobState.SCHEDULED, planned)
    sqlite_store.claim(finished.id, Event(T0, "dispatch", "go"), started_at=T0)
    # 120 g measured, in this period (finished at T0 + 1h)
    summary = run_summary(finished.id, operational_g=120.0)
    sqlite_store.finish_run(finished.id, JobState.SUCCEEDED, Event(T0, "finish", "ok"), summary)
    scheduled, _ = sqlite_store.submit(new_job(project="nlp", power_kw=2.0), T0)
    plan = '{"forecast_intensity": 50.0, "reason": "best window"}'
    sqlite_store.transition(
        scheduled.id, JobState.QUEUED, JobState.SCHEDULED, Event(T0, "defer", "w", plan),
        planned_start=T0 + timedelta(hours=2), plan={"forecast_intensity": 50.0},
    )  # fmt: skip
    # 2 kW x 1 h x 50 g/kWh = 100 g estimated
    body = client.get("/budgets/nlp").json()
    assert (body["measured_kg"], body["estimated_kg"]) == (0.12, 0.1)
    assert (body["used_kg"], body["left_kg"]) == (0.22, 0.78)
    metrics = client.get("/metrics").text
    assert 'greenai_budget_grams{project="nlp"} 1000.0' in metrics
    assert 'greenai_budget_used_grams{project="nlp"} 220.0' in metrics


def test_a_job_may_declare_its_power_for_its_budget_estimate(client: httpx.Client) -> None:
    body = {"command": ["train"], "duration": "1h", "project": "nlp", "power_kw": 2.5}
    job = client.post("/jobs", json=body)
    assert job.status_code == 201, job.text
    assert client.get(f"/jobs/{job.json()['id']}").json()["power_kw"] == 2.5
    for bad in (-1, "inf", 1001):
        refused = client.post("/jobs", json={**body, "power_kw": bad})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"][-1] == "power_kw"
