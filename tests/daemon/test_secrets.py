"""Secrets never leave the daemon: a real `greenai serve` holding an API token and WattTime
credentials runs jobs that print their whole environment, and a job given a secret in its own
env; then every file under its home (the raw database file, evidence, decision log, run folders
and their logs), its own output and every API answer are searched for any of these secrets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.daemon.conftest import free_port
from tests.daemon.helpers import python

TOKEN = "tok-7f3c9e1d-never-printed"
PASSWORD = "wt-pass-4b2a-never-printed"
USERNAME = "wt-user-9e8d-never-printed"
JOB_SECRET = "job-env-6a0f-never-stored"  # in a job's own env: it reaches the job, no file
SECRETS = (TOKEN, PASSWORD, USERNAME, JOB_SECRET)
# Exits 0 only if the job got its secret; the command itself holds it reversed, not in clear.
CHECK_JOB_SECRET = (
    "import os, sys; "
    f"sys.exit(0 if os.environ.get('JOB_SECRET', '')[::-1] == {JOB_SECRET[::-1]!r} else 3)"
)
LAUNCH = "import greenai.cli.serve; from greenai.cli.app import app; app()"


def test_no_secret_reaches_a_file_a_log_a_job_or_an_answer(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = {
        **os.environ,
        "GREENAI_HOME": str(home),
        "GREENAI_API_PORT": str(port),
        "GREENAI_API_TOKEN": TOKEN,
        "WATTTIME_USERNAME": USERNAME,
        "WATTTIME_PASSWORD": PASSWORD,
        "GREENAI_TICK_SECONDS": "0.2",
        "GREENAI_PROVIDER": "egrid:RFCE",
        "GREENAI_METERS": "estimate",
    }
    output = tmp_path / "daemon.out"
    with output.open("w") as sink:
        daemon = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "serve"], env=env, stdout=sink, stderr=sink
        )
    answers: list[str] = []
    try:
        answers += _drive(f"http://127.0.0.1:{port}")
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    texts = {str(p): p.read_bytes() for p in home.rglob("*") if p.is_file()}
    texts[str(output)] = output.read_bytes()
    assert any(b"'PATH'" in body for body in texts.values())  # the jobs did print their env
    assert str(home / "greenai.db") in texts  # the raw SQLite file is searched too
    assert stat.S_IMODE((home / "env.key").stat().st_mode) == 0o600
    for secret in SECRETS:
        assert [name for name, body in texts.items() if secret.encode() in body] == []
        assert [answer[:80] for answer in answers if secret in answer] == []


def _drive(url: str) -> list[str]:
    """Submit jobs that print their environment, wait for them, and read every endpoint."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        while True:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the daemon did not come up"
                time.sleep(0.1)
        body = {"command": list(python("import os; print(dict(os.environ))")), "duration": 5}
        ids = [client.post("/jobs", json=body).json()["id"] for _ in range(2)]
        sealed = {"command": list(python(CHECK_JOB_SECRET)), "duration": 5}
        ids.append(
            client.post("/jobs", json={**sealed, "env": {"JOB_SECRET": JOB_SECRET}}).json()["id"]
        )
        while not all(client.get(f"/jobs/{i}").json()["state"] == "succeeded" for i in ids):
            assert time.monotonic() < deadline, "the jobs did not finish"
            time.sleep(0.1)
        paths = ["/jobs", *(f"/jobs/{i}" for i in ids), "/plan", "/intensity", "/healthz"]
        paths += ["/metrics", "/evidence.csv", "/openapi.json"]
        return [client.get(path).text for path in paths]
