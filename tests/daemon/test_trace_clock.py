"""`greenai serve` on a trace clock (issue 12): the whole daemon runs in the trace's time.

A real daemon replays the bundled GB 2023 trace at 3600x: a job submitted with a 12 h
allowance is planned, waits and runs in May 2023 trace time, its evidence row carries trace
times, and /healthz stays ok although the loop's ticks are hours of trace time apart."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from greenai.core.settings import load_settings
from greenai.core.time import ScaledClock, SystemClock, parse_time
from greenai.daemon.loop import MIN_TICK_WALL_S, tick_wall_seconds
from greenai.providers.clock import build_clock
from tests.daemon.conftest import free_port

LAUNCH = "import greenai.cli.serve; from greenai.cli.app import app; app()"
TOKEN = "tok-trace"
TRACE = Path(__file__).parents[2] / "greenai" / "data" / "gb-2023-hourly.csv"
TRACE_START = "2023-05-04T12:00:00Z"


def wait_until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if found := check():
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def trace_daemon(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    env = {
        **os.environ,
        "GREENAI_HOME": str(tmp_path / "home"),
        "GREENAI_API_PORT": str(free_port()),
        "GREENAI_API_TOKEN": TOKEN,
        "GREENAI_GPU_SLOTS": "1",
        "GREENAI_METERS": "estimate",
        "GREENAI_GRACE_SECONDS": "0",
    }
    flags = ["--provider", f"trace:{TRACE}", "--trace-start", TRACE_START,
             "--trace-speed", "3600", "--tick", "600", "--policy", "window"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines = [process.stdout.readline(), process.stdout.readline()]
    try:
        yield f"http://127.0.0.1:{env['GREENAI_API_PORT']}", tmp_path / "home", lines
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def test_the_daemon_plans_runs_and_records_in_trace_time(
    trace_daemon: tuple[str, Path, list[str]],
) -> None:
    url, home, lines = trace_daemon
    assert "greenai daemon listening on" in lines[0]
    assert lines[1].startswith("on trace time: now is 2023-05-") and "3600x" in lines[1]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        body = {"command": ["true"], "duration": "1h", "max_delay": "12h", "name": "night"}
        created = client.post("/jobs", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        def finished() -> dict[str, Any] | None:
            job = client.get(f"/jobs/{job_id}").json()
            return job if job["state"] in ("succeeded", "failed") else None

        job = wait_until(finished)
        assert job["state"] == "succeeded"
        submitted = parse_time(job["submitted_at"])
        assert datetime(2023, 5, 4, tzinfo=UTC) <= submitted < datetime(2023, 5, 7, tzinfo=UTC)
        assert parse_time(job["deadline"]) > submitted
        health = client.get("/healthz").json()
        assert health["status"] == "ok", health  # ticks hours of trace time apart are on time
        assert parse_time(health["last_tick_at"]).year == 2023
    with (home / "evidence.csv").open(newline="") as handle:
        [row] = list(csv.DictReader(handle))
    started = parse_time(row["started_at"])
    assert started.year == 2023 and started >= submitted
    assert row["provider"] == "trace" and "trace replay" in row["notes"]


def test_a_trace_provider_puts_the_daemon_on_trace_time() -> None:
    settings = load_settings(env={}, provider=f"trace:{TRACE}", trace_speed=1800, tick_seconds=60)
    clock = build_clock(settings)
    assert isinstance(clock, ScaledClock) and clock.now().year == 2023
    assert tick_wall_seconds(settings, clock) == MIN_TICK_WALL_S  # 60 s of trace: 1/30 s wall
    wall = load_settings(env={}, provider="egrid:RFCE", tick_seconds=0.2)
    assert isinstance(build_clock(wall), SystemClock)
    assert tick_wall_seconds(wall, build_clock(wall)) == 0.2  # the wall's own tick is kept
