"""``max_runtime`` at the edge: the duration formats and bounds of ``duration``, a 422 naming
the field otherwise, and the limit in every read of the job and in the store."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from greenai.cli.app import app
from greenai.storage.store import Store
from tests.api.conftest import JOB, TOKEN, Serve
from tests.api.test_validation import assert_nothing_stored, failing_fields, post_raw


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("2h", 7200.0), ("90s", 90.0), ("1.5d", 129_600.0), (45, 45.0), (0.5, 0.5)],
)
def test_max_runtime_round_trips_in_every_read(
    client: httpx.Client, sqlite_store: Store, given: Any, seconds: float
) -> None:
    created = client.post("/jobs", json={**JOB, "max_runtime": given})
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["max_runtime_s"] == seconds
    assert client.get(f"/jobs/{job['id']}").json()["max_runtime_s"] == seconds
    assert client.get("/jobs").json()["items"][0]["max_runtime_s"] == seconds
    assert sqlite_store.get(job["id"]).job.max_runtime == timedelta(seconds=seconds)


def test_a_job_without_max_runtime_has_none(client: httpx.Client, sqlite_store: Store) -> None:
    job = client.post("/jobs", json=JOB).json()
    assert job["max_runtime_s"] is None
    assert sqlite_store.get(job["id"]).job.max_runtime is None


def test_the_longest_max_runtime_is_accepted(client: httpx.Client) -> None:
    created = client.post("/jobs", json={**JOB, "max_runtime": 366 * 86400})
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "1e-7",  # rounds to no time at all
        "-1",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e12",
        "31622401",  # 366 days and a second
        '"367d"',
        '"0s"',
        '"soon"',
        '"-5m"',
        "true",
        "[60]",
        '"1' + "0" * 400 + 'd"',
    ],
)
def test_an_impossible_max_runtime_is_422_naming_it(client: httpx.Client, value: str) -> None:
    text = '{"command": ["x"], "duration": 60, "max_runtime": ' + value + "}"
    response = post_raw(client, text)
    assert "max_runtime" in failing_fields(response)
    assert_nothing_stored(client)


def test_greenai_submit_sends_max_runtime(serve: Serve, sqlite_store: Store) -> None:
    _, server = serve(token=SecretStr(TOKEN))
    env = {"GREENAI_API_URL": server.url, "GREENAI_API_TOKEN": TOKEN}
    argv = ["submit", "--duration", "1h", "--max-runtime", "90m", "--json", "--", "python", "x"]
    result = CliRunner().invoke(app, argv, env=env)
    assert result.exit_code == 0, result.output
    job = json.loads(result.output)
    assert job["max_runtime_s"] == 5400.0
    assert sqlite_store.get(job["id"]).job.max_runtime == timedelta(minutes=90)
    refused = CliRunner().invoke(app, [*argv[:4], "0", *argv[5:]], env=env)
    assert refused.exit_code == 2 and "--max-runtime " in refused.output  # the flag, named
