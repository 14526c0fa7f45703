"""Every input the audit found crashing or accepted is a 4xx naming the field, and nothing
of it is stored: the inputs exactly as the audit sent them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.conftest import JOB


def post_raw(client: httpx.Client, text: str) -> httpx.Response:
    """Posts JSON text as written (NaN, lone surrogates), which ``json=`` would refuse."""
    headers = {"Content-Type": "application/json"}
    return client.post("/jobs", content=text.encode("utf-8", "surrogatepass"), headers=headers)


def failing_fields(response: httpx.Response) -> list[object]:
    assert response.status_code == 422, response.text[:500]
    return [part for error in response.json()["detail"] for part in error["loc"]]


def assert_nothing_stored(client: httpx.Client) -> None:
    assert client.get("/jobs").json()["total"] == 0


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"command": ["x"], "duration": 1e12}', "duration"),
        ('{"command": ["x"], "duration": 1e308}', "duration"),
        ('{"command": ["x"], "duration": "99999999h"}', "duration"),
        ('{"command": ["x"], "duration": NaN}', "duration"),
        ('{"command": ["x"], "duration": Infinity}', "duration"),
        ('{"command": ["x"], "duration": 31622401}', "duration"),  # 366 days and a second
        ('{"command": ["x"], "duration": 1%s}' % ("0" * 400), "duration"),  # no float holds it
        ('{"command": ["x"], "duration": "1%sd"}' % ("0" * 400), "duration"),
        ('{"command": ["x"], "duration": 60, "threshold": 1%s}' % ("0" * 400), "threshold"),
        ('{"command": ["x"], "duration": 60, "gpus": 1%s}' % ("0" * 400), "gpus"),
        ('{"command": ["x"], "duration": 60, "max_delay": 1e12}', "max_delay"),
        ('{"command": ["x"], "duration": 60, "max_delay": -Infinity}', "max_delay"),
        ('{"command": ["x"], "duration": 60, "threshold": NaN}', "threshold"),
        ('{"command": ["x"], "duration": 60, "threshold": Infinity}', "threshold"),
        ('{"command": ["echo", "\\ud800"], "duration": 60}', "command"),
        ('{"command": ["echo", "a\\u0000b"], "duration": 60}', "command"),
        ('{"command": ["", "x"], "duration": 60}', "command"),
        ('{"command": ["x"], "duration": 60, "env": {"A": "\\u0000"}}', "env"),
        ('{"command": ["x"], "duration": 60, "env": {"A": "\\udfff"}}', "env"),
        ('{"command": ["x"], "duration": 60, "env": {"\\ud800": "x"}}', "env"),
        ('{"command": ["x"], "duration": 60, "env": {"A=B": "x"}}', "env"),
        ('{"command": ["x"], "duration": 60, "env": {"1A": "x"}}', "env"),
        ('{"command": ["x"], "duration": 60, "name": "a\\u0000"}', "name"),
        ('{"command": ["x"], "duration": 60, "cwd": "/tmp\\u0000"}', "cwd"),
        ('{"command": ["x"], "duration": 60, "project": "\\ud800"}', "project"),
        ('{"command": ["x"], "duration": 60, "provider": "uk\\u0000"}', "provider"),
        ('{"command": ["x"], "duration": 60, "deadline": "2025-05-05T00:00:00Z"}', "deadline"),
        ('{"command": ["x"], "duration": 60, "deadline": "9999-12-31T23:59:59-14:00"}', "deadline"),
        ('{"command": ["x"], "duration": 60, "deadline": "0001-01-01T00:00:00+14:00"}', "deadline"),
    ],
)
def test_audit_inputs_are_422_naming_the_field(client: httpx.Client, text: str, field: str) -> None:
    response = post_raw(client, text)
    assert field in failing_fields(response)
    assert "input" not in response.json()["detail"][0]  # nothing echoed that JSON cannot hold
    assert_nothing_stored(client)


def body(**fields: Any) -> str:
    return json.dumps({"command": ["x"], "duration": 60, **fields})


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (body(command=["x"] * 100_000), "command"),  # the audit's 100k-item command
        (body(command=["x"] * 4097), "command"),
        (body(command=["x", "a" * 65_537]), "command"),
        (body(command=["x"] + ["a" * 60_000] * 5), "command"),  # 300 kB of argv in all
        (body(env={f"K{i}": "v" for i in range(10_000)}), "env"),  # the audit's 10k keys
        (body(env={f"K{i}": "v" for i in range(1025)}), "env"),
        (body(env={"A": "v" * 65_537}), "env"),
        (body(env={f"K{i}": "v" * 60_000 for i in range(5)}), "env"),  # 300 kB of env in all
        (body(name="n" * 201), "name"),
        (body(project="p" * 201), "project"),
        (body(provider="p" * 201), "provider"),
        (body(cwd="/" * 4097), "cwd"),
    ],
)
def test_oversized_fields_are_422_naming_the_field(
    client: httpx.Client, text: str, field: str
) -> None:
    assert len(text) <= 1024 * 1024  # under the body limit: the field's own bound refuses it
    assert field in failing_fields(post_raw(client, text))
    assert_nothing_stored(client)


def test_a_job_at_every_bound_is_accepted(client: httpx.Client) -> None:
    argv = ["x"] + ["a" * 65_536] * 3
    env = {f"K{i}": "v" for i in range(1024)}
    created = post_raw(client, body(command=argv, env=env, duration=366 * 86400))
    assert created.status_code == 201, created.text[:500]
    assert client.get(f"/jobs/{created.json()['id']}").json()["command"] == argv


def test_an_empty_argument_is_a_real_one(client: httpx.Client) -> None:
    answer = client.post("/jobs", json={"command": ["grep", "", "file"], "duration": 60})
    assert answer.status_code == 201 and answer.json()["command"] == ["grep", "", "file"]


def test_a_10_mb_argv_is_413_before_it_is_parsed(client: httpx.Client) -> None:
    response = post_raw(client, body(command=["x", "a" * 10_000_000]))
    assert response.status_code == 413
    assert "body" in response.json()["detail"]
    assert_nothing_stored(client)


def test_a_streamed_body_over_1_mib_is_413(client: httpx.Client) -> None:
    chunks = (b"x" * 65_536 for _ in range(17))  # no Content-Length: chunked

    response = client.post("/jobs", content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert_nothing_stored(client)


def test_a_body_just_under_1_mib_reaches_validation(client: httpx.Client) -> None:
    text = body(name="n" * (1024 * 1024 - 100))
    assert len(text) < 1024 * 1024
    assert failing_fields(post_raw(client, text)) == ["body", "name"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/jobs", {"offset": "9223372036854775808"}, "offset"),
        ("/jobs", {"offset": "10000001"}, "offset"),
        ("/jobs", {"limit": "1001"}, "limit"),
        ("/jobs", {"project": "a\x00"}, "project"),
        ("/jobs", {"project": "p" * 201}, "project"),
        ("/plan", {"limit": "9223372036854775808"}, "limit"),
        ("/intensity", {"provider": "uk\x00"}, "provider"),
        ("/jobs/a%00b", {}, "job_id"),
    ],
)
def test_out_of_range_query_parameters_are_422_naming_them(
    client: httpx.Client, path: str, params: dict[str, str], field: str
) -> None:
    assert field in failing_fields(client.get(path, params=params))


def test_the_largest_offset_is_answered(client: httpx.Client) -> None:
    page = client.get("/jobs", params={"offset": 10_000_000}).json()
    assert (page["items"], page["offset"]) == ([], 10_000_000)


def test_reads_still_work_after_refused_inputs(client: httpx.Client) -> None:
    post_raw(client, '{"command": ["echo", "\\ud800"], "duration": 60}')
    assert client.post("/jobs", json=JOB).status_code == 201
    for path in ("/jobs", "/plan"):
        assert client.get(path).status_code == 200
