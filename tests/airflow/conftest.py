"""Real Airflow 3 for the integration's tests: its own virtualenv (scripts/ensure-airflow.sh,
as Airflow pins many packages the main one must not get), a SQLite metadata DB in a tmp
AIRFLOW_HOME per test, `airflow dags test` run as a subprocess of that virtualenv (it runs
deferred tasks' triggers in-process), and a real greenai daemon on a trace clock."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.daemon.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_VENV = Path(os.environ.get("GREENAI_AIRFLOW_VENV", REPO / ".venv-airflow"))
DAGS = REPO / "deploy" / "airflow" / "dags"
TRACE_START = datetime(2030, 1, 1, tzinfo=UTC)
SPEED = 1800  # trace seconds per wall second: a trace hour every 2 s
TOKEN = "tok-airflow-3f9c1e7d"
CLEAN_HOUR = 30  # the daemon's trace: clean from TRACE_START + 30 h for two hours
LAUNCH = "import greenai.cli.serve; from greenai.cli.app import app; app()"


def write_trace(path: Path, low: set[int], hours: int = 72) -> Path:
    """A half-hourly trace of ``hours`` from ``TRACE_START``: 50 g/kWh in the hours ``low``
    (counted from the start), 300 elsewhere."""
    lines = ["timestamp,average_intensity"]
    for step in range(hours * 2):
        at = TRACE_START + timedelta(minutes=30 * step)
        lines.append(f"{at:%Y-%m-%dT%H:%M:%SZ},{50.0 if step // 2 in low else 300.0}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def airflow_bin() -> Path:
    """The Airflow virtualenv's bin folder, made by the script when missing or stale."""
    subprocess.run(["bash", str(REPO / "scripts" / "ensure-airflow.sh")], check=True)
    assert (AIRFLOW_VENV / "bin" / "airflow").is_file()
    return AIRFLOW_VENV / "bin"


@pytest.fixture(scope="session")
def migrated_db(airflow_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `airflow db migrate` for the session; each test gets a copy of the database."""
    home = tmp_path_factory.mktemp("airflow-template")
    run = subprocess.run(
        [str(airflow_bin / "airflow"), "db", "migrate"],
        env=airflow_env(airflow_bin, home, {}),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return home / "airflow.db"


@dataclass
class Airflow:
    """One AIRFLOW_HOME with a migrated SQLite DB, driving `airflow dags test`."""

    bin: Path
    home: Path

    def dags_test(
        self, dag_id: str, logical_date: str, env: dict[str, str], conf: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin / "airflow"), "dags", "test", dag_id, logical_date]
        return subprocess.run(
            [*argv, *(["-c", conf] if conf else [])],
            env=airflow_env(self.bin, self.home, env),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=240,
        )

    def python(self, code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "python"), "-c", code],
            env=airflow_env(self.bin, self.home, env),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=120,
        )


def airflow_env(bin_dir: Path, home: Path, extra: dict[str, str]) -> dict[str, str]:
    """A clean environment for Airflow: its venv first on PATH, its home, the example DAGs."""
    return {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "COLUMNS": "200",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "GREENAI_HOME": str(home / "greenai"),
        "GREENAI_CONFIG": str(home / "no-greenai.toml"),
        **extra,
    }


@pytest.fixture
def airflow(airflow_bin: Path, migrated_db: Path, tmp_path: Path) -> Airflow:
    home = tmp_path / "airflow"
    home.mkdir()
    shutil.copy(migrated_db, home / "airflow.db")
    return Airflow(airflow_bin, home)


@dataclass
class Daemon:
    url: str
    port: int

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def connection(self) -> dict[str, str]:
        """The Airflow connection `greenai_default`, as an environment variable."""
        conn = f'{{"conn_type": "http", "host": "127.0.0.1", "port": {self.port}, '
        return {"AIRFLOW_CONN_GREENAI_DEFAULT": conn + f'"password": "{TOKEN}"}}'}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """`greenai serve` at 1800x on a trace whose only clean hours are the 31st and 32nd: a 2 h
    job allowed to wait 36 h is planned into them, wherever before them Airflow submits it
    (Airflow has 60 s on the wall to get there, on a busy machine too)."""
    trace = write_trace(tmp_path / "daemon-trace.csv", {CLEAN_HOUR, CLEAN_HOUR + 1})
    port = free_port()
    env = {
        **os.environ,
        "GREENAI_HOME": str(tmp_path / "daemon"),
        "GREENAI_API_PORT": str(port),
        "GREENAI_API_TOKEN": TOKEN,
        "GREENAI_GPU_SLOTS": "1",
        "GREENAI_METERS": "estimate",
        "GREENAI_GRACE_SECONDS": "0",
    }
    flags = ["--provider", f"trace:{trace}", "--trace-start", f"{TRACE_START:%Y-%m-%dT%H:%M:%SZ}",
             "--trace-speed", str(SPEED), "--tick", "300", "--policy", "window"]  # fmt: skip
    log = (tmp_path / "daemon.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", *flags], env=env, stdout=log, stderr=log
    )
    daemon = Daemon(f"http://127.0.0.1:{port}", port)
    try:
        wait_for_health(daemon, process)
        yield daemon
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def wait_for_health(daemon: Daemon, process: subprocess.Popen[bytes]) -> None:
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        assert process.poll() is None, "greenai serve exited"
        try:
            if httpx.get(f"{daemon.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)  # not listening yet
            continue
        time.sleep(0.1)
    raise AssertionError("greenai serve did not answer /healthz")
