"""What a local run may not do: see the daemon's environment, outlive its deadline, fill the
disk with output, or leave its records readable by others."""

from __future__ import annotations

import json
import os
import signal
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import greenai
from greenai.core.time import ScaledClock, format_time, utc_now
from greenai.executors.base import Exited, Handle
from greenai.executors.local import (
    DEFAULT_ENV_ALLOW,
    SUPERVISOR_ENV,
    LocalExecutor,
    parse_env_allow,
)
from greenai.executors.supervisor import LAUNCH_KEY
from tests.executors.helpers import LocalRuns, gated, process_gone, python, sleeping, wait_for

SECRETS = {
    "GREENAI_API_TOKEN": "token-secret",
    "WATTTIME_PASSWORD": "password-secret",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "SOME_OTHER": "other",
}
PRINT_ENV = python("import json, os; print(json.dumps(dict(os.environ)))")


def wait_exited(launch_dir: Path, executor: LocalExecutor, handle: Handle) -> Exited:
    """The run's end, read like any daemon would (``poll``), once ``exit.json`` exists; the
    supervisor writes it whether or not anyone polls."""
    wait_for(lambda: (launch_dir / "exit.json").exists(), "the exit record", timeout=20)
    status = executor.poll(handle)
    assert isinstance(status, Exited), status
    return status


def text_of(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def environ_of(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (entry.decode().partition("=") for entry in entries if entry)
    return {name: value for name, _, value in pairs}


# --- environment -------------------------------------------------------------------------------


def test_the_job_gets_only_allowed_names_its_own_env_and_its_marks(local_runs: LocalRuns) -> None:
    checkout = str(Path(greenai.__file__).resolve().parent.parent)
    base_env = {
        "PATH": os.environ["PATH"],
        "ALLOWED": "yes",
        "PYTHONPATH": checkout,  # the supervisor's, not the job's
        **SECRETS,
    }
    allow = {"PATH", "ALLOWED", "GREENAI_API_TOKEN", "AWS_NOT_SET"}  # a secret name is ignored
    executor = local_runs.executor(base_env=base_env, env_allow=allow)
    gate = local_runs.root / "gate"
    code = (
        "import json, os, sys, time\n"
        "print(json.dumps(dict(os.environ)), flush=True)\n"
        f"while not os.path.exists({str(gate)!r}):\n"
        "    time.sleep(0.01)\n"
    )
    own = {
        "OWN": "mine",
        "WATTTIME_PASSWORD": "from-the-job",
        "PATH": "/own/bin:" + base_env["PATH"],
    }
    launch = local_runs.launch(python(code), gpus=(1,), env=own, job_id="job-clean", attempt=3)
    handle = local_runs.submit(executor, launch)
    wait_for(lambda: text_of(launch.log_path), "the job's env")
    supervisor = json.loads((launch.state_dir / "supervisor.json").read_text())["pid"]
    supervisor_env = environ_of(supervisor)
    gate.touch()
    status = wait_exited(launch.state_dir, executor, handle)
    assert status.exit_code == 0
    seen = json.loads(launch.log_path.read_text())
    assert not set(SECRETS) & set(seen)
    assert "PYTHONPATH" not in seen and "AWS_NOT_SET" not in seen
    assert seen["ALLOWED"] == "yes" and seen["OWN"] == "mine"
    assert seen["PATH"] == own["PATH"]
    assert (seen["CUDA_VISIBLE_DEVICES"], seen["GREENAI_JOB_ID"], seen["GREENAI_ATTEMPT"]) == (
        "1",
        "job-clean",
        "3",
    )
    assert "not passed on to the command (secrets): WATTTIME_PASSWORD" in status.notes
    # The supervisor runs with what it needs to import greenai, and no secret either.
    assert supervisor_env["PYTHONPATH"] == checkout
    assert not set(SECRETS) & set(supervisor_env)
    assert set(supervisor_env) <= SUPERVISOR_ENV | allow | {"LC_CTYPE", LAUNCH_KEY}
    assert LAUNCH_KEY not in seen  # the key that opens the launch's env is the supervisor's
    launch_record = json.loads((launch.state_dir / "launch.json").read_text())
    assert launch_record["env"] == {} and launch_record["env_sealed"]  # the job's own env
    assert "from-the-job" not in json.dumps(launch_record)
    assert "token-secret" not in json.dumps(launch_record)


def test_by_default_the_job_gets_the_settings_allow_list(local_runs: LocalRuns) -> None:
    base_env = {"PATH": os.environ["PATH"], "HOME": "/home/someone", "LANG": "C.UTF-8", **SECRETS}
    executor = local_runs.executor(base_env=base_env)
    launch = local_runs.launch(PRINT_ENV)
    status = wait_exited(launch.state_dir, executor, local_runs.submit(executor, launch))
    assert status.exit_code == 0 and status.notes == ()
    seen = json.loads(launch.log_path.read_text())
    assert (seen["HOME"], seen["LANG"], seen["PATH"]) == (
        "/home/someone",
        "C.UTF-8",
        base_env["PATH"],
    )
    assert not set(SECRETS) & set(seen)
    assert {"PATH", "HOME", "PYTHONPATH", "VIRTUAL_ENV", "CUDA_HOME"} <= DEFAULT_ENV_ALLOW


def test_the_allow_list_may_be_the_settings_text(local_runs: LocalRuns) -> None:
    assert parse_env_allow(" PATH, ALLOWED,,") == {"PATH", "ALLOWED"}
    base_env = {"PATH": os.environ["PATH"], "ALLOWED": "yes", "HOME": "/home/someone"}
    executor = local_runs.executor(base_env=base_env, env_allow="PATH, ALLOWED")
    launch = local_runs.launch(PRINT_ENV)
    wait_exited(launch.state_dir, executor, local_runs.submit(executor, launch))
    seen = json.loads(launch.log_path.read_text())
    assert seen["ALLOWED"] == "yes" and "HOME" not in seen


# --- deadline ----------------------------------------------------------------------------------


def test_the_supervisor_stops_the_command_at_its_deadline(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    stop_at = utc_now() + timedelta(seconds=1)
    launch = local_runs.launch(sleeping(), stop_at=stop_at, grace_s=0.5)
    handle = local_runs.submit(executor, launch)
    status = wait_exited(launch.state_dir, executor, handle)  # nobody polls until it ends
    assert (status.exit_code, status.signal) == (143, signal.SIGTERM)
    assert status.notes == (f"stopped at its deadline {format_time(stop_at)}",)
    assert stop_at <= status.finished_at < stop_at + timedelta(seconds=5)


def run_past_its_deadline(
    local_runs: LocalRuns, executor: LocalExecutor, code: str, stop_at: datetime
) -> tuple[Exited, int]:
    """Run ``code`` (which prints the pid of a child it starts) to be stopped at ``stop_at``
    with half a second of grace; returns how it ended and the child's pid."""
    launch = local_runs.launch(python(code), stop_at=stop_at, grace_s=0.5)
    handle = local_runs.submit(executor, launch)
    grandchild = int(wait_for(lambda: text_of(launch.log_path), "the grandchild"))
    return wait_exited(launch.state_dir, executor, handle), grandchild


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    stop_at = utc_now() + timedelta(seconds=1)
    status, grandchild = run_past_its_deadline(local_runs, executor, code, stop_at)
    assert (status.exit_code, status.signal) == (137, signal.SIGKILL)
    assert status.notes[0] == f"stopped at its deadline {format_time(stop_at)}"
    assert "killed: still running 0.5s after SIGTERM" in status.notes
    assert status.finished_at >= stop_at + timedelta(seconds=0.5)
    wait_for(lambda: process_gone(grandchild), "the whole group to be stopped", timeout=5)


def test_what_the_command_leaves_in_its_group_gets_the_grace_then_sigkill(
    local_runs: LocalRuns,
) -> None:
    executor = local_runs.executor()
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', {stubborn!r}])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    stop_at = utc_now() + timedelta(seconds=1)
    status, grandchild = run_past_its_deadline(local_runs, executor, code, stop_at)
    assert (status.exit_code, status.signal) == (143, signal.SIGTERM)
    assert process_gone(grandchild)


def test_the_deadline_is_on_the_daemons_clock(local_runs: LocalRuns) -> None:
    trace_start = datetime(2023, 5, 4, 12, 0, tzinfo=UTC)
    clock = ScaledClock(trace_start, speed=60)
    executor = local_runs.executor(clock=clock)
    stop_at = clock.now() + timedelta(seconds=60)  # a second of wall time
    launch = local_runs.launch(sleeping(), stop_at=stop_at, grace_s=0.5)
    status = wait_exited(launch.state_dir, executor, local_runs.submit(executor, launch))
    assert status.exit_code == 143
    assert stop_at <= status.finished_at < stop_at + timedelta(minutes=5)


def test_a_deadline_already_past_means_the_command_never_starts(local_runs: LocalRuns) -> None:
    marker = local_runs.root / "ran"
    executor = local_runs.executor()
    launch = local_runs.launch(("touch", str(marker)), stop_at=utc_now() - timedelta(seconds=1))
    status = wait_exited(launch.state_dir, executor, local_runs.submit(executor, launch))
    assert (status.exit_code, status.signal) == (143, signal.SIGTERM)
    assert status.notes[0].startswith("not started: its deadline")
    assert not marker.exists() and not (launch.state_dir / "started.json").exists()


def test_a_command_that_ends_before_its_deadline_is_left_alone(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    gate = local_runs.root / "gate"
    launch = local_runs.launch(gated(gate, 3), stop_at=utc_now() + timedelta(hours=1))
    handle = local_runs.submit(executor, launch)
    wait_for(lambda: (launch.state_dir / "started.json").exists(), "the command to start")
    gate.touch()
    status = wait_exited(launch.state_dir, executor, handle)
    assert (status.exit_code, status.signal, status.notes) == (3, None, ())


# --- output log cap ----------------------------------------------------------------------------

CAP = 64 * 1024


def test_a_capped_log_rotates_and_keeps_the_latest_output_in_order(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    lines = 200_000  # about 3 MiB
    code = (
        "import sys\n"
        f"for n in range({lines}):\n"
        "    sys.stdout.write(f'line {n:07d}\\n')\n"
        "    if n % 50_000 == 0:\n"
        "        sys.stdout.flush(); sys.stderr.write(f'err {n:07d}\\n'); sys.stderr.flush()\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('the end\\n')\n"
    )
    launch = local_runs.launch(python(code), log_max_bytes=CAP, log_backups=2)
    status = wait_exited(launch.state_dir, executor, local_runs.submit(executor, launch))
    assert status.exit_code == 0 and status.notes == ()
    names = sorted(path.name for path in launch.state_dir.glob("output.log*"))
    assert names == ["output.log", "output.log.1", "output.log.2"]
    logs = [launch.state_dir / name for name in ("output.log.2", "output.log.1", "output.log")]
    assert all(0 < path.stat().st_size <= CAP for path in logs)
    kept = b"".join(path.read_bytes() for path in logs).decode().splitlines()
    assert kept[-1] == "the end"
    numbers = [int(line.split()[1]) for line in kept[:-1]]
    assert numbers == list(range(numbers[0], lines))  # the latest output, nothing lost inside
    assert len(kept) > 2 * CAP // len("line 0000000\n")


def test_output_keeps_its_order_across_stdout_and_stderr(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    code = (
        "import sys\n"
        "for n in range(6):\n"
        "    stream = sys.stdout if n % 2 else sys.stderr\n"
        "    stream.write(f'{n}\\n'); stream.flush()\n"
    )
    launch = local_runs.launch(python(code), log_max_bytes=CAP)
    wait_exited(launch.state_dir, executor, local_runs.submit(executor, launch))
    assert launch.log_path.read_text().split() == ["0", "1", "2", "3", "4", "5"]


def test_output_left_behind_by_a_lingering_child_does_not_hold_the_exit(
    local_runs: LocalRuns,
) -> None:
    executor = local_runs.executor()
    code = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True)\n"
    )
    launch = local_runs.launch(python(code), log_max_bytes=CAP)
    handle = local_runs.submit(executor, launch)
    grandchild = int(wait_for(lambda: text_of(launch.log_path), "the grandchild"))
    try:
        status = wait_exited(launch.state_dir, executor, handle)
        assert status.exit_code == 0
        assert status.notes == ("output of processes the command left running was not logged",)
    finally:
        os.kill(grandchild, signal.SIGKILL)


# --- file modes --------------------------------------------------------------------------------


def test_the_state_folder_is_private_whatever_the_umask(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    launches = [
        local_runs.launch(python("print('x' * 5000)")),
        local_runs.launch(python("print('x' * 5000)"), log_max_bytes=2048, log_backups=1),
    ]
    handles = []
    previous = os.umask(0)
    try:
        for launch in launches:
            handles.append(local_runs.submit(executor, launch))
    finally:
        os.umask(previous)
    for launch, handle in zip(launches, handles, strict=True):
        wait_exited(launch.state_dir, executor, handle)
        assert stat.S_IMODE(launch.state_dir.stat().st_mode) == 0o700
        files = {
            path.name: stat.S_IMODE(path.stat().st_mode) for path in launch.state_dir.iterdir()
        }
        assert {"launch.json", "supervisor.json", "started.json", "exit.json", "output.log"} <= set(
            files
        )
        assert {"supervisor.log"} <= set(files)
        assert set(files.values()) == {0o600}, files
    assert (launches[1].state_dir / "output.log.1").exists()
