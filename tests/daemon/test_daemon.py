"""The daemon as a whole: in-process wiring, and real `greenai serve` processes that are
SIGKILLed and SIGTERMed."""

from __future__ import annotations

import csv
import json
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
from greenai.daemon import Daemon, allowed_hosts, check_bind
from tests.daemon.conftest import free_port
from tests.daemon.helpers import FakeSource, forecast, python

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


def test_serve_names_a_bad_executor_or_policy_flag_and_exits_2(tmp_path: Path) -> None:
    import greenai.cli.serve  # noqa: F401  (registers the commands)

    home = ["--home", str(tmp_path), "--port", str(free_port())]
    wrong = CliRunner().invoke(app, ["serve", "--executor", "mainframe", *home])
    assert wrong.exit_code == 2
    assert "executor: unknown 'mainframe' (choose from kubernetes, local, slurm)" in wrong.output
    offline = CliRunner().invoke(app, ["serve", "--policy", "oracle", *home])
    assert offline.exit_code == 2 and "policy: unknown 'oracle'" in offline.output


def test_daemon_in_process_runs_a_submitted_job(tmp_path: Path) -> None:
    settings = load_settings(
        env={},
        home=tmp_path,
        api_port=free_port(),
        tick_seconds=0.1,
        policy="window",
        api_token=TOKEN,
        meters="estimate",
        power_watts=3600,
    )
    daemon = Daemon(
        settings, source_for=lambda spec: FakeSource(forecast([200.0] * 96, start=_hour_ago()))
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
            [run] = detail["evidence"]
            assert run["meter"] == "estimate" and run["energy_kwh"] > 0
            assert Path(detail["log_path"]).read_text() == "1\n"
            assert c.get("/intensity").json()["current"] == 200.0
    finally:
        daemon.stop()
    assert settings.evidence_path.read_text().startswith("run_id,job_id,")
    assert '"action": "start"' in settings.decision_log_path.read_text()


def test_the_daemon_refuses_an_unknown_executor_or_a_policy_it_cannot_run(tmp_path: Path) -> None:
    for wrong, problem in (
        (
            {"executor": "mainframe"},
            "executor: unknown 'mainframe' (choose from kubernetes, local, slurm)",
        ),
        ({"policy": "oracle"}, "policy: unknown 'oracle'"),
        ({"policy": "threshold"}, "threshold: the threshold policy needs GREENAI_THRESHOLD"),
    ):
        settings = load_settings(env={}, home=tmp_path, api_port=free_port(), **wrong)
        with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            Daemon(settings)


def test_the_daemon_refuses_foreign_hosts_and_unauthenticated_reads(tmp_path: Path) -> None:
    settings = load_settings(env={}, home=tmp_path, api_port=free_port(), api_token=TOKEN)
    daemon = Daemon(settings, source_for=lambda spec: FakeSource(None))
    daemon.start()
    try:
        assert httpx.get(f"{daemon.url}/healthz").status_code == 200
        foreign = httpx.get(f"{daemon.url}/healthz", headers={"Host": "rebound.example"})
        assert foreign.status_code == 400
        assert httpx.get(f"{daemon.url}/jobs").status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{daemon.url}/jobs", headers=auth).status_code == 200
    finally:
        daemon.stop()
    assert allowed_hosts("0.0.0.0") is None and allowed_hosts("10.0.0.5") == ("10.0.0.5",)


def test_a_new_home_is_its_owners_only(tmp_path: Path) -> None:
    import stat

    home = tmp_path / "fresh" / "home"
    daemon = Daemon(load_settings(env={}, home=home, api_port=free_port()))
    daemon.store.engine.dispose()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "greenai.db").stat().st_mode) == 0o600


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


def test_a_daemon_killed_while_a_job_runs_reattaches_and_records_the_real_end_once(
    start_daemon: Callable[[], subprocess.Popen[str]], serve_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL the daemon while a job runs and others wait: the job keeps running under its
    supervisor, the restarted daemon re-attaches to it, records its real exit status and end
    time, and writes exactly one evidence row for it; nothing is lost or run twice."""
    marker = tmp_path / "started.txt"
    note_start = (
        f"import os; open({str(marker)!r}, 'a').write(os.environ['GREENAI_JOB_ID'] + '\\n')"
    )
    release = tmp_path / "release"
    # The long job runs until the test releases it (after the restart), then exits 3.
    hold = (
        f"; import pathlib, sys, time\nwhile not pathlib.Path({str(release)!r}).exists(): "
        "time.sleep(0.05)\nsys.exit(3)"
    )
    url = f"http://127.0.0.1:{serve_env['GREENAI_API_PORT']}"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        first = start_daemon()
        held = client.post(
            "/jobs", json={"command": list(python(note_start + hold)), "duration": 60}
        ).json()["id"]
        wait_until(lambda: client.get(f"/jobs/{held}").json()["state"] == "running")
        quick = {"command": list(python(note_start)), "duration": 60}
        queued = [client.post("/jobs", json=quick).json()["id"] for _ in range(3)]
        pid = _command_pid(serve_env, held)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert not _gone(pid)  # the command outlived its daemon

        second = start_daemon()
        wait_until(lambda: _event(client, held, "reattach"))
        assert client.get(f"/jobs/{held}").json()["state"] == "running"
        release.touch()
        done = wait_until(lambda: _final(client, held))
        assert (done["state"], done["exit_code"], done["attempts"]) == ("failed", 3, 1)
        ended = _exit_record(serve_env, held)
        assert done["finished_at"].replace("+00:00", "Z") == ended["finished_at"]
        wait_until(lambda: all(_final(client, j) for j in queued))
        assert all(client.get(f"/jobs/{j}").json()["state"] == "succeeded" for j in queued)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0
    starts = _marker_lines(marker)
    assert sorted(starts) == sorted([held, *queued])  # every job ran, and ran once
    rows = [row for row in _evidence(serve_env) if row["job_id"] == held]
    assert [row["exit_code"] for row in rows] == ["3"]
    assert rows[0]["finished_at"] == ended["finished_at"]


def _final(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    job = client.get(f"/jobs/{job_id}").json()
    return job if job["state"] in ("succeeded", "failed", "cancelled", "expired") else None


def _state_dir(env: dict[str, str], job_id: str) -> Path:
    handle = wait_until(lambda: _column(env, job_id, "handle"))
    return Path(json.loads(handle)["ref"]["state_dir"])


def _command_pid(env: dict[str, str], job_id: str) -> int:
    started = _state_dir(env, job_id) / "started.json"
    return int(wait_until(lambda: started.exists() and json.loads(started.read_text())["pid"]))


def _exit_record(env: dict[str, str], job_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_state_dir(env, job_id) / "exit.json").read_text())
    return data


def _evidence(env: dict[str, str]) -> list[dict[str, str]]:
    with (Path(env["GREENAI_HOME"]) / "evidence.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _event(client: httpx.Client, job_id: str, action: str) -> dict[str, Any] | None:
    events = client.get(f"/jobs/{job_id}").json()["decisions"]
    return next((e for e in events if e["action"] == action), None)


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
    pid = _command_pid(serve_env, running)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0
    assert _gone(pid)
    assert _job_state_from_db(serve_env, running) == "queued"
    assert _job_state_from_db(serve_env, waiting) in ("queued", "scheduled")


# -- the loop process ------------------------------------------------------------------------


def _loop_pid(daemon_pid: int) -> int:
    """The daemon's loop process: its child that multiprocessing spawned."""

    def find() -> int | None:
        children = Path(f"/proc/{daemon_pid}/task/{daemon_pid}/children").read_text().split()
        for child in children:
            with_args = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in with_args:
                return int(child)
        return None

    found: int = wait_until(find)
    return found


def test_the_loop_runs_in_its_own_process_and_shows_through_the_api(
    start_daemon: Callable[[], subprocess.Popen[str]], serve_env: dict[str, str]
) -> None:
    """Planning runs beside the API, not in it: the loop's ticks and forecasts reach /healthz
    and /intensity, and the instance that dispatches is the loop process."""
    url = f"http://127.0.0.1:{serve_env['GREENAI_API_PORT']}"
    daemon = start_daemon()
    loop = _loop_pid(daemon.pid)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        health = wait_until(lambda: (h := client.get("/healthz").json())["ticks"] >= 3 and h)
        assert health["status"] == "ok" and health["last_tick_at"] is not None
        intensity = client.get("/intensity").json()
        assert intensity["source"] == "egrid:RFCE" and intensity["current"] > 0
        job = client.post("/jobs", json={"command": list(python("print(1)")), "duration": 60})
        job_id = job.json()["id"]
        wait_until(lambda: client.get(f"/jobs/{job_id}").json()["state"] == "succeeded")
    import sqlite3

    database = Path(serve_env["GREENAI_HOME"]) / "greenai.db"
    with sqlite3.connect(database) as connection:
        [(pid,)] = connection.execute("SELECT pid FROM instances").fetchall()
    assert pid == loop != daemon.pid
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0
    assert _gone(loop)


def test_a_killed_daemon_takes_its_loop_with_it(
    start_daemon: Callable[[], subprocess.Popen[str]],
) -> None:
    """A SIGKILLed daemon must not leave a loop dispatching behind it (its restart would run
    a second one)."""
    daemon = start_daemon()
    loop = _loop_pid(daemon.pid)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(timeout=10)
    assert wait_until(lambda: _gone(loop), timeout=5)


def test_a_daemon_whose_loop_dies_exits_non_zero(
    start_daemon: Callable[[], subprocess.Popen[str]],
) -> None:
    """Accepting jobs that nothing will ever start is worse than stopping: the service
    manager restarts a daemon that exits 1, and the restart re-attaches to the runs."""
    daemon = start_daemon()
    os.kill(_loop_pid(daemon.pid), signal.SIGKILL)
    assert daemon.wait(timeout=20) == 1


def test_the_loop_process_does_not_load_the_web_stack() -> None:
    """What the loop imports is what it holds in memory for the daemon's life: no web stack,
    no migrations, and no cryptography before a job env needs it."""
    unused = ("fastapi", "uvicorn", "starlette", "alembic", "cryptography")
    code = (
        "import sys, greenai.daemon.loop, greenai.daemon.wiring; "
        f"print(sorted(m for m in {unused!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    import greenai.daemon

    assert all(getattr(greenai.daemon, name) is not None for name in greenai.daemon.__all__)


def test_the_loop_hands_freed_memory_back_after_a_tick() -> None:
    from greenai.daemon.loop import release_memory

    garbage = [str(i) * 20 for i in range(200_000)]
    del garbage
    release_memory()  # glibc's malloc_trim where there is one; a no-op elsewhere


def test_serve_refuses_meters_that_cannot_measure_here_unless_told_to_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9 #2: ``GREENAI_METERS=nvml greenai serve`` on a host without a GPU started and
    wrote its jobs' energy as 0 kWh; ``greenai run`` refuses in the same situation."""
    import greenai.cli.serve  # registers the commands
    import greenai.meters.nvml
    from tests.meters.fakes import FakeNvml

    no_gpu = FakeNvml([], init_error="NVML Shared Library Not Found")
    monkeypatch.setattr(greenai.meters.nvml, "PynvmlLibrary", lambda: no_gpu)
    home = ["--home", str(tmp_path), "--port", str(free_port()), "--gpu-slots", "1"]
    refused = CliRunner().invoke(app, ["serve", *home], env={"GREENAI_METERS": "nvml"})
    assert refused.exit_code == 2
    said = " ".join(refused.output.split())
    assert "meters: nvml cannot measure on this host" in said
    assert "NVML Shared Library Not Found" in said and "meters=auto" in said
    one_gpu = FakeNvml([[0]])
    monkeypatch.setattr(greenai.meters.nvml, "PynvmlLibrary", lambda: one_gpu)
    no_slots = CliRunner().invoke(app, ["serve", *home[:-1], "0"], env={"GREENAI_METERS": "nvml"})
    assert no_slots.exit_code == 2
    assert "given no GPU" in " ".join(no_slots.output.split())


def test_meters_are_checked_only_where_the_daemon_measures_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Slurm or Kubernetes daemon's jobs run on other hosts: its own host has nothing to
    measure, so a GPU-less scheduler host with ``meters=nvml`` is no reason to refuse."""
    import greenai.meters.nvml
    from tests.meters.fakes import FakeNvml

    no_gpu = FakeNvml([], init_error="NVML Shared Library Not Found")
    monkeypatch.setattr(greenai.meters.nvml, "PynvmlLibrary", lambda: no_gpu)
    settings = {"home": tmp_path, "api_port": free_port(), "meters": "nvml"}
    with pytest.raises(ConfigError, match="meters: nvml cannot measure on this host"):
        Daemon(load_settings(env={}, **settings))
    Daemon(load_settings(env={}, executor="slurm", **settings))  # refuses nothing
