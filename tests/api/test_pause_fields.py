"""A job's own pause signal and grace at the edge: a signal by any spelling of its name, a
grace as a duration, both in every read and the store; a 422 naming the field otherwise."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from greenai.storage.store import Store
from tests.api.conftest import JOB


def test_a_jobs_pause_signal_and_grace_round_trip(
    client: httpx.Client, sqlite_store: Store
) -> None:
    body = {**JOB, "interruptible": True, "pause_signal": "usr1", "pause_grace": "5m"}
    job = client.post("/jobs", json=body).json()
    assert (job["pause_signal"], job["pause_grace_s"]) == ("SIGUSR1", 300.0)
    shown = client.get(f"/jobs/{job['id']}").json()
    assert (shown["pause_signal"], shown["pause_grace_s"], shown["pieces"]) == ("SIGUSR1", 300, 0)
    assert shown["total"]["runs"] == 0
    stored = sqlite_store.get(job["id"]).job
    assert (stored.pause_signal, stored.pause_grace) == ("SIGUSR1", timedelta(minutes=5))


def test_a_job_without_them_pauses_as_the_daemon_says(client: httpx.Client) -> None:
    job = client.post("/jobs", json=JOB).json()
    assert (job["pause_signal"], job["pause_grace_s"]) == (None, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [("pause_signal", "SIGNOPE"), ("pause_signal", "SIG_IGN"), ("pause_grace", -1)],
)
def test_a_bad_pause_field_is_a_422_naming_it(
    client: httpx.Client, field: str, value: object
) -> None:
    answer = client.post("/jobs", json={**JOB, field: value})
    assert answer.status_code == 422
    assert field in answer.text
