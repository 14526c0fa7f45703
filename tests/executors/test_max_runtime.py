"""A job's ``max_runtime``: the supervisor stops a real command that long (wall time) after it
started, whichever of that and its deadline comes first, and says which in the exit record.

Bounds are generous: a loaded machine may start or reap a process late, never early."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from greenai.core.time import format_time, utc_now
from greenai.executors.base import Exited, Handle, Launch
from greenai.executors.local import LocalExecutor
from greenai.executors.supervisor import launch_record, read_exit, read_launch, write_record
from tests.executors.helpers import (
    ESTIMATE,
    LocalRuns,
    gated,
    process_gone,
    python,
    sleeping,
    wait_for,
)

SECOND = timedelta(seconds=1)
MAX_RUNTIME_NOTE = "stopped after its max runtime 0:00:01"
IGNORES_SIGTERM = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(p.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def wait_exited(launch: Launch, executor: LocalExecutor, handle: Handle) -> Exited:
    wait_for(lambda: (launch.state_dir / "exit.json").exists(), "the exit record", timeout=30)
    status = executor.poll(handle)
    assert isinstance(status, Exited), status
    return status


def text_of(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def run_s(status: Exited) -> float:
    return (status.finished_at - status.started_at).total_seconds()


def test_a_command_past_its_max_runtime_is_stopped_by_sigterm(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    launch = local_runs.launch(sleeping(30), max_runtime=SECOND, grace_s=10)
    status = wait_exited(launch, executor, local_runs.submit(executor, launch))  # nobody polls
    assert (status.exit_code, status.signal) == (143, signal.SIGTERM)  # within the grace
    assert (status.notes, status.limit) == ((MAX_RUNTIME_NOTE,), MAX_RUNTIME_NOTE)
    assert 1.0 <= run_s(status) < 25  # stopped, not slept out (30 s)
    record = json.loads((launch.state_dir / "exit.json").read_text())
    assert record["limit"] == MAX_RUNTIME_NOTE


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    launch = local_runs.launch(python(IGNORES_SIGTERM), max_runtime=SECOND, grace_s=0.5)
    handle = local_runs.submit(executor, launch)
    grandchild = int(wait_for(lambda: text_of(launch.log_path), "the grandchild"))
    status = wait_exited(launch, executor, handle)
    assert (status.exit_code, status.signal) == (137, signal.SIGKILL)
    assert status.notes == (MAX_RUNTIME_NOTE, "killed: still running 0.5s after SIGTERM")
    assert status.limit == MAX_RUNTIME_NOTE
    assert run_s(status) >= 1.5  # the max runtime, then the whole grace
    wait_for(lambda: process_gone(grandchild), "the whole group to be stopped", timeout=10)


def test_a_command_that_exits_0_on_sigterm_still_says_it_was_stopped(
    local_runs: LocalRuns,
) -> None:
    executor = local_runs.executor()
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        "time.sleep(60)\n"
    )
    launch = local_runs.launch(python(code), max_runtime=SECOND, grace_s=10)
    status = wait_exited(launch, executor, local_runs.submit(executor, launch))
    assert (status.exit_code, status.signal, status.limit) == (0, None, MAX_RUNTIME_NOTE)


@pytest.mark.parametrize("first", ["max_runtime", "deadline"])
def test_whichever_limit_comes_first_stops_it_and_is_named(
    local_runs: LocalRuns, first: str
) -> None:
    executor = local_runs.executor()
    soon, late = utc_now() + SECOND, utc_now() + timedelta(hours=1)
    limits: dict[str, Any] = (
        {"max_runtime": SECOND, "stop_at": late}
        if first == "max_runtime"
        else {"max_runtime": timedelta(hours=1), "stop_at": soon}
    )
    launch = local_runs.launch(sleeping(30), grace_s=10, **limits)
    status = wait_exited(launch, executor, local_runs.submit(executor, launch))
    assert status.exit_code == 143
    expected = (
        MAX_RUNTIME_NOTE
        if first == "max_runtime"
        else f"stopped at its deadline {format_time(soon)}"
    )
    assert (status.notes, status.limit) == ((expected,), expected)


def test_a_command_that_ends_within_its_max_runtime_is_left_alone(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    gate = local_runs.root / "gate"
    launch = local_runs.launch(gated(gate, 3), max_runtime=timedelta(hours=1))
    handle = local_runs.submit(executor, launch)
    wait_for(lambda: (launch.state_dir / "started.json").exists(), "the command to start")
    gate.touch()
    status = wait_exited(launch, executor, handle)
    assert (status.exit_code, status.signal, status.notes, status.limit) == (3, None, (), None)


# --- launch.json -------------------------------------------------------------------------------


def test_the_max_runtime_travels_in_launch_json(tmp_path: Path) -> None:
    launch = Launch("j", 1, ("true",), 0, (), tmp_path, max_runtime=timedelta(minutes=90))
    write_record(tmp_path / "launch.json", launch_record(launch, ESTIMATE, {"kind": "system"}))
    assert json.loads((tmp_path / "launch.json").read_text())["max_runtime_s"] == 5400.0
    assert read_launch(tmp_path).max_runtime_s == 5400.0
    older = {"job_id": "j", "attempt": 1, "command": ["true"], "clock": {"kind": "system"}}
    write_record(tmp_path / "launch.json", older)
    assert read_launch(tmp_path).max_runtime_s is None  # a launch of an older greenai: no limit


@pytest.mark.parametrize("value", [0, -1, "NaN", "inf", "soon"])
def test_a_launch_with_an_impossible_max_runtime_is_never_run(tmp_path: Path, value: Any) -> None:
    marker = tmp_path / "ran"
    record = {
        "job_id": "j",
        "attempt": 1,
        "command": ["touch", str(marker)],
        "clock": {"kind": "system"},
        "max_runtime_s": value,
    }
    write_record(tmp_path / "launch.json", record)
    done = subprocess.run(
        [sys.executable, "-m", "greenai.executors.supervisor", str(tmp_path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status = read_exit(tmp_path)
    assert status is not None and status.exit_code == 126
    assert status.notes[0].startswith("cannot launch:") and "max_runtime_s" in status.notes[0]
    assert not marker.exists()
