"""A retried submit gets its first job back; a different request under a used key is a 409."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import FULL, JOB
from tests.daemon.helpers import T0
from tests.fakes import FrozenClock


def submit(client: httpx.Client, body: dict[str, Any], key: str) -> httpx.Response:
    return client.post("/jobs", json=body, headers={"Idempotency-Key": key})


def test_an_identical_retry_answers_200_with_the_first_job(client: httpx.Client) -> None:
    first = submit(client, FULL, "k-1")
    again = submit(client, FULL, "k-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert client.get("/jobs").json()["total"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"command": ["python", "eval.py"]},
        {"name": "other"},
        {"duration": "2h"},
        {"gpus": 1},
        {"interruptible": False},
        {"flexible": True},
        {"on_deadline": "run"},
        {"policy": "window"},
        {"threshold": 99.0},
        {"project": "cv"},
        {"provider": "uk:14"},
        {"cwd": "/tmp"},
        {"env": {"A": "2"}},
        {"env": None},
        {"max_runtime": "3h"},
        {"max_runtime": None},
        {"max_delay": "5h"},
        {"max_delay": None, "deadline": "2023-05-04T20:00:00Z"},
    ],
)
def test_a_different_request_under_a_used_key_is_409_naming_the_key(
    client: httpx.Client, change: dict[str, Any]
) -> None:
    first = submit(client, FULL, "k-2")
    assert first.status_code == 201, first.text
    body = {name: value for name, value in {**FULL, **change}.items() if value is not None}
    conflict = submit(client, body, "k-2")
    assert conflict.status_code == 409, conflict.text
    assert "Idempotency-Key" in conflict.json()["detail"]
    assert "k-2" in conflict.json()["detail"]
    assert client.get("/jobs").json()["total"] == 1


def test_a_retry_later_with_the_same_max_delay_is_the_same_request(serve: Any) -> None:
    clock = FrozenClock(T0)
    client, _ = serve(clock=clock)
    first = submit(client, JOB, "k-3")
    clock.advance(90)  # the retry resolves max_delay against a later now
    again = submit(client, JOB, "k-3")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["deadline"] == first.json()["deadline"]


def test_a_retry_with_the_same_explicit_deadline_is_the_same_request(serve: Any) -> None:
    clock = FrozenClock(T0)
    client, _ = serve(clock=clock)
    body = {"command": ["x"], "duration": 60, "deadline": "2023-05-04T18:00:00Z"}
    first = submit(client, body, "k-4")
    clock.advance(90)
    same_instant = {**body, "deadline": "2023-05-04T19:00:00+01:00"}
    assert submit(client, same_instant, "k-4").status_code == 200
    later = {**body, "deadline": "2023-05-04T18:00:01Z"}
    assert submit(client, later, "k-4").status_code == 409
    assert first.status_code == 201


def test_the_default_wait_counts_as_what_the_client_sent(serve: Any) -> None:
    client, _ = serve()
    body = {"command": ["x"], "duration": 60}
    assert submit(client, body, "k-5").status_code == 201
    assert submit(client, body, "k-5").status_code == 200
    assert submit(client, {**body, "max_delay": 60}, "k-5").status_code == 409
