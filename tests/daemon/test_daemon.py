"""The daemon as a whole: in-process wiring, and real `greenai serve` processes that are
SIGKILLed and SIGTERMed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from greenai.cli.app import app
from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings
from greenai.daemon import Daemon, check_bind
from tests.daemon.conftest import free_port
from tests.daemon.helpers import FakeMeter, FakeSource, forecast, python

LAUNCH = "import greenai.cli.serve; from greenai.cli.app import app; app()"
TOKEN = "tok-123"


def wait_until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return result


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.org"])
def test_refuses_to_listen_beyond_localhost_without_a_token(host: str) -> None:
    with pytest.raises(ConfigError, match="without GREENAI_API_TOKEN"):
        check_bind(host, has_token=False)
    check_bind(host, has_token=True)
    check_bind("127.0.0.1", has_token=False)
    check_bind("::1", has_token=False)


def test_serve_exits_2_when_asked_to_listen_openly_without_token(tmp_path: Path) -> None:
    import greenai.cli.serve  # noqa: F401  (registers the commands)

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "without GREENAI_API_TOKEN" in result.output


def test_daemon_in_process_runs_a_submitted_job(tmp_path: Path) -> None:
    settings = load_settings(
        env={},
        home=tmp_path,
        api_port=free_port(),
        tick_seconds=0.1,
        policy="window",
        api_token=TOKEN,
    )
    meter = FakeMeter()
    daemon = Daemon(
        settings,
        source_for=lambda spec: FakeSource(forecast([200.0] * 96, start=_hour_ago())),
        meter_for=lambda gpus: meter,
    )
    daemon.start()
    try:
        with httpx.Client(base_url=daemon.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            job = c.post("/jobs", json={"command": list(python("print(1)")), "duration": 60})
            assert job.status_code == 201
            job_id = job.json()["id"]
            done = wait_until(lambda: c.get(f"/jobs/{job_id}").json()["state"] == "succeeded")
            assert done
            detail = c.get(f"/jobs/{job_id}").json()
            assert detail["evidence"][0]["energy_kwh"] == meter.kwh
            assert c.get("/intensity").json()["current"] == 200.0
    finally:
        daemon.stop()
    assert settings.evidence_path.read_text().startswith("run_id,job_id,")
    assert '"action": "start"' in settings.decision_log_path.read_text()


def _hour_ago() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


# -- real processes --------------------------------------------------------------------------


@pytest.fixture
def serve_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GREENAI_HOME": str(tmp_path / "home"),
        "GREENAI_API_PORT": str(free_port()),
        "GREENAI_API_TOKEN": TOKEN,
        "GREENAI_TICK_SECONDS": "0.2",
        "GREENAI_GPU_SLOTS": "1",
        "GREENAI_PROVIDER": "egrid:RFCE",
        "GREENAI_POLICY": "window",
        "GREENAI_METERS": "estimate",
        "GREENAI_GRACE_SECONDS": "0",
        "GREENAI_RETRY_BUDGET": "1",
    }


@pytest.fixture
def start_daemon(serve_env: dict[str, str]) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "serve"],
            env=serve_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        started.append(process)
        line = process.stdout.readline() if process.stdout else ""
        assert "greenai daemon listening on http://127.0.0.1:" in line, line
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def _marker_lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_sigkill_with_queued_and_running_jobs_loses_nothing_and_starts_nothing_twice(
    start_daemon: Callable[[], subprocess.Popen[str]], serve_env: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "started.txt"
    note_start = (
        f"import os; open({str(marker)!r}, 'a').write(os.environ['GREENAI_JOB_ID'] + '\\n')"
    )
    url = f"http://127.0.0.1:{serve_env['GREENAI_API_PORT']}"
    # The first run sleeps (it is running when the daemon dies); its retry returns at once.
    sleep_once = (
        f"; import time; seen = open({str(marker)!r}).read().split(); "
        "time.sleep(60 if seen.count(os.environ['GREENAI_JOB_ID']) < 2 else 0)"
    )
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        _kill_and_restart(start_daemon, client, serve_env, note_start, sleep_once, marker)


def _kill_and_restart(
    start_daemon: Callable[[], subprocess.Popen[str]],
    client: httpx.Client,
    serve_env: dict[str, str],
    note_start: str,
    sleep_once: str,
    marker: Path,
) -> None:
    first = start_daemon()
    sleeper = client.post(
        "/jobs", json={"command": list(python(note_start + sleep_once)), "duration": 60}
    ).json()["id"]
    wait_until(lambda: client.get(f"/jobs/{sleeper}").json()["state"] == "running")
    orphan_pid = client.get(f"/jobs/{sleeper}").json()
    quick = {"command": list(python(note_start)), "duration": 60}
    queued = [client.post("/jobs", json=quick).json()["id"] for _ in range(3)]
    wait_until(lambda: len(_marker_lines(marker)) == 1)
    pid = _pid_of(serve_env, sleeper)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert Path(f"/proc/{pid}").exists()  # the command outlived its daemon

    second = start_daemon()
    reconcile = wait_until(lambda: _event(client, sleeper, "reconcile"))
    assert "re-queued" in reconcile["reason"]
    wait_until(lambda: all(client.get(f"/jobs/{j}").json()["state"] == "succeeded" for j in queued))
    assert _gone(pid)
    jobs = client.get("/jobs", params={"limit": 100}).json()
    assert {j["id"] for j in jobs["items"]} == {sleeper, *queued}
    starts = _marker_lines(marker)
    assert all(starts.count(j) == 1 for j in queued)
    wait_until(lambda: client.get(f"/jobs/{sleeper}").json()["state"] == "succeeded")
    assert _marker_lines(marker).count(sleeper) == 2  # the interrupted run and its one retry
    assert client.get(f"/jobs/{sleeper}").json()["attempts"] == 2
    assert orphan_pid["attempts"] == 1
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0
    assert _job_state_from_db(serve_env, sleeper) == "succeeded"


def _event(client: httpx.Client, job_id: str, action: str) -> dict[str, Any] | None:
    events = client.get(f"/jobs/{job_id}").json()["decisions"]
    return next((e for e in events if e["action"] == action), None)


def _pid_of(env: dict[str, str], job_id: str) -> int:
    return int(wait_until(lambda: _column(env, job_id, "pid")))


def _job_state_from_db(env: dict[str, str], job_id: str) -> str:
    return str(_column(env, job_id, "state"))


def _column(env: dict[str, str], job_id: str, column: str) -> Any:
    import sqlite3

    with sqlite3.connect(Path(env["GREENAI_HOME"]) / "greenai.db") as connection:
        row = connection.execute(f"SELECT {column} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row[0]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_every_submit_answered_201_survives_a_sigkill(
    start_daemon: Callable[[], subprocess.Popen[str]], serve_env: dict[str, str]
) -> None:
    """A 201 means committed: kill the daemon the moment the answers are in, then read the
    table directly."""
    url = f"http://127.0.0.1:{serve_env['GREENAI_API_PORT']}"
    daemon = start_daemon()
    body = {"command": ["true"], "duration": 60, "max_delay": "12h"}
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def submit(n: int) -> httpx.Response:
        return httpx.post(f"{url}/jobs", json=body, headers={**headers, "Idempotency-Key": str(n)})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(submit, range(64)))
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(timeout=10)
    assert [a.status_code for a in answers] == [201] * 64
    import sqlite3

    with sqlite3.connect(Path(serve_env["GREENAI_HOME"]) / "greenai.db") as connection:
        stored = {row[0] for row in connection.execute("SELECT id FROM jobs")}
    assert {a.json()["id"] for a in answers} <= stored


def test_sigterm_stops_dispatching_and_requeues_what_outlives_the_grace(
    start_daemon: Callable[[], subprocess.Popen[str]], serve_env: dict[str, str]
) -> None:
    url = f"http://127.0.0.1:{serve_env['GREENAI_API_PORT']}"
    daemon = start_daemon()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        body = {"command": list(python("import time; time.sleep(60)")), "duration": 60}
        running = client.post("/jobs", json=body).json()["id"]
        wait_until(lambda: client.get(f"/jobs/{running}").json()["state"] == "running")
        waiting = client.post("/jobs", json=body).json()["id"]
    pid = _pid_of(serve_env, running)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0
    assert _gone(pid)
    assert _job_state_from_db(serve_env, running) == "queued"
    assert _job_state_from_db(serve_env, waiting) in ("queued", "scheduled")
