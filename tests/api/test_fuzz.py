"""schemathesis over the app's own OpenAPI, against a real uvicorn: no input may be a 5xx.

Deterministic: hypothesis is derandomised (a fixed seed per test) with no example database,
and each operation gets a bounded number of examples, so a run takes seconds and repeats.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

import greenai.api.routes.jobs as jobs_route
from greenai.core.domain import Forecast
from greenai.scheduling.config import EngineStats
from greenai.storage.models import Base
from greenai.storage.store import Store
from tests.api.conftest import AUTH, JOB, TOKEN, Serve
from tests.daemon.helpers import forecast

EXAMPLES = 25  # per operation and generation mode


@dataclass
class CachedForecasts:
    """An engine view with one cached forecast, so /intensity answers 200 as well as 404."""

    stats: EngineStats = field(default_factory=EngineStats)

    def forecast(self, spec: str | None = None) -> Forecast | None:
        return forecast([300.0, 100.0] * 24) if spec is None else None


@dataclass
class Target:
    url: str
    schema: Any
    headers: dict[str, str]
    reset: Any = None  # empties the store and seeds it again: each sequence from one state


@pytest.fixture(params=["token", "no-token"])
def target(
    request: pytest.FixtureRequest,
    serve: Serve,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Target]:
    evidence = tmp_path / "evidence.csv"
    evidence.write_text("run_id,job_id\n")
    token = SecretStr(TOKEN) if request.param == "token" else None
    client, server = serve(
        token=token, engine=CachedForecasts(), evidence_path=evidence, gpu_slots=64
    )
    headers = AUTH if token else {}

    # Job ids from a counter that each sequence restarts: schemathesis builds the next
    # request from the last response, so a random id made a replayed sequence draw differently.
    ids = [itertools.count(1)]
    monkeypatch.setattr(jobs_route.uuid, "uuid4", lambda: uuid.UUID(int=next(ids[0])))

    def reset() -> None:
        ids[0] = itertools.count(1)
        with sqlite_store.engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
        seeded = client.post("/jobs", json=JOB, headers=headers)  # a job for the reads to find
        assert seeded.status_code == 201, seeded.text

    reset()
    raw = client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    yield Target(server.url, schema, headers, reset)


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def _server_errors(target: Target, mode: schemathesis.GenerationMode) -> list[str]:
    """Every case of every operation in ``mode`` that the ``not_a_server_error`` check fails."""
    failures: list[str] = []
    strategies = [op.as_strategy(generation_mode=mode) for op in _operations(target.schema)]

    @settings(
        max_examples=EXAMPLES * len(strategies),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(st.one_of(strategies))
    def run(case: Any) -> None:
        response = case.call(base_url=target.url, headers=dict(target.headers), timeout=30)
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except FailureGroup:
            failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

    run()
    return failures


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_no_generated_request_is_a_server_error(
    target: Target, mode: schemathesis.GenerationMode
) -> None:
    assert _server_errors(target, mode) == []


def test_every_operation_is_fuzzed(target: Target) -> None:
    paths = {(op.method.upper(), op.path) for op in _operations(target.schema)}
    assert {("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/jobs/{job_id}")} <= paths
    assert {("POST", "/jobs/{job_id}/cancel"), ("GET", "/plan"), ("GET", "/intensity")} <= paths
    assert httpx.get(target.url + "/healthz").status_code == 200  # still up afterwards


def test_no_sequence_of_requests_is_a_server_error(target: Target) -> None:
    """Stateful: the links schemathesis infers (a submitted job's id into show and cancel)."""
    failures: list[str] = []

    schema = target.schema

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Every sequence starts from the same store: hypothesis replays sequences, and
            # one that met the jobs and idempotency keys an earlier one left behind drew its
            # rules differently the second time (FlakyStrategyDefinition).
            target.reset()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": target.url, "headers": dict(target.headers), "timeout": 30}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except FailureGroup:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

    Machine.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=6,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
    )
    assert failures == []
