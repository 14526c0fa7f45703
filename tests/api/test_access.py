"""Who may read, and through which Host name: tokens on reads, and DNS rebinding refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.api.conftest import AUTH, JOB, TOKEN

READS = ("/jobs", "/jobs/{id}", "/plan", "/evidence.csv")


def _setup(serve: Any, tmp_path: Path, **options: Any) -> tuple[Any, str]:
    evidence = tmp_path / "evidence.csv"
    evidence.write_text("run_id,job_id\n")
    client, _ = serve(token=SecretStr(TOKEN), evidence_path=evidence, **options)
    created = client.post("/jobs", json=JOB, headers=AUTH)
    assert created.status_code == 201, created.text
    return client, created.json()["id"]


@pytest.mark.parametrize("path", READS)
def test_reads_without_the_token_are_401(serve: Any, tmp_path: Path, path: str) -> None:
    client, job_id = _setup(serve, tmp_path)
    url = path.format(id=job_id)
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(url, headers=AUTH).status_code == 200


@pytest.mark.parametrize("path", READS)
def test_public_read_serves_reads_without_the_token(serve: Any, tmp_path: Path, path: str) -> None:
    client, job_id = _setup(serve, tmp_path, public_read=True)
    assert client.get(path.format(id=job_id)).status_code == 200
    assert client.post("/jobs", json=JOB).status_code == 401  # writes still need it


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/docs", "/openapi.json"])
def test_health_metrics_and_docs_need_no_token(serve: Any, tmp_path: Path, path: str) -> None:
    client, _ = _setup(serve, tmp_path)
    assert client.get(path).status_code == 200


def test_without_a_configured_token_reads_are_open(serve: Any) -> None:
    client, _ = serve()
    assert client.get("/jobs").status_code == 200


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.2", "localhost.evil.example", ""]
)
def test_a_foreign_host_header_is_400(serve: Any, host: str) -> None:
    client, _ = serve(allowed_hosts=LOOPBACK)
    for path in ("/jobs", "/healthz"):
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 400, response.text
        assert "Host" in response.json()["detail"]
    refused = client.post("/jobs", json=JOB, headers={"Host": host})
    assert refused.status_code == 400
    assert client.get("/jobs").json()["total"] == 0


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "LOCALHOST:9", "localhost.", "[::1]", "[::1]:8080", "127.0.0.1:1"]
)
def test_the_bound_and_loopback_names_are_served(serve: Any, host: str) -> None:
    client, _ = serve(allowed_hosts=LOOPBACK)
    assert client.get("/jobs", headers={"Host": host}).status_code == 200


def test_without_allowed_hosts_any_host_is_served(serve: Any) -> None:
    client, _ = serve()
    assert client.get("/healthz", headers={"Host": "proxy.example"}).status_code == 200
