"""The local executor with real supervisors and real commands: what reaches the command, what
the records say, and runs that outlive (or lose) the process that started them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.errors import ConfigError, ExecutorError
from greenai.core.time import ScaledClock, parse_time, utc_now
from greenai.executors.base import (
    Exited,
    Handle,
    Launch,
    Lost,
    Running,
    parse_gpu_slots,
    pick_gpus,
)
from greenai.executors.local import LEGACY_STOPPED, LocalExecutor
from greenai.meters.config import MeterConfig
from tests.executors.helpers import (
    ESTIMATE,
    LocalRuns,
    gated,
    process_gone,
    python,
    sleeping,
    wait_end,
    wait_for,
)


def read(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def text_of(path: Path) -> str:
    """The file's text without surrounding blanks; "" while it does not exist."""
    return path.read_text().strip() if path.exists() else ""


def exited(status: object) -> Exited:
    assert isinstance(status, Exited), status
    return status


def test_command_gets_its_gpus_env_cwd_and_log_but_no_secret(
    local_runs: LocalRuns, tmp_path: Path
) -> None:
    base_env = {
        "PATH": os.environ["PATH"],
        "KEEP": "kept",
        "GREENAI_API_TOKEN": "token-secret",
        "WATTTIME_PASSWORD": "password-secret",
    }
    executor = local_runs.executor(base_env=base_env, env_allow=("PATH", "KEEP"))
    code = (
        "import os, sys\n"
        "e = os.environ\n"
        "print(e['CUDA_VISIBLE_DEVICES'], e['X'], e['KEEP'], e['GREENAI_JOB_ID'],"
        " e['GREENAI_ATTEMPT'], os.getcwd(), sys.stdin.read() == '')\n"
        "print('secrets:', [k for k in e if 'TOKEN' in k or 'PASSWORD' in k])\n"
    )
    launch = local_runs.launch(
        python(code), gpus=(2, 3), cwd=str(tmp_path), env={"X": "yes"}, job_id="job-env", attempt=2
    )
    handle = local_runs.submit(executor, launch)
    assert exited(wait_end(executor, handle)).exit_code == 0
    first, second = launch.log_path.read_text().splitlines()
    assert first.split() == ["2,3", "yes", "kept", "job-env", "2", str(tmp_path), "True"]
    assert second == "secrets: []"


def test_no_gpus_means_an_empty_cuda_visible_devices(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    launch = local_runs.launch(python("import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"))
    wait_end(executor, local_runs.submit(executor, launch))
    assert launch.log_path.read_text().strip() == "''"


def test_exit_code_and_stderr_reach_the_log(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    launch = local_runs.launch(python("import sys; print('out', flush=True); sys.exit('boom')"))
    status = exited(wait_end(executor, local_runs.submit(executor, launch)))
    assert status.exit_code == 1
    assert launch.log_path.read_text().split() == ["out", "boom"]


def test_records_carry_times_reading_and_raw_counters(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    gate = local_runs.root / "gate"
    launch = local_runs.launch(gated(gate, 4))
    handle = local_runs.submit(executor, launch)
    started = wait_for(lambda: (launch.state_dir / "started.json").exists(), "started.json")
    assert started
    record = read(launch.state_dir / "started.json")
    assert set(record) == {"pid", "pgid", "started_at", "counters"}
    assert record["pid"] == record["pgid"] and record["counters"] == {}  # estimate: no counters
    assert read(launch.state_dir / "supervisor.json")["pid"] != record["pid"]
    gate.touch()
    status = exited(wait_end(executor, handle))
    record = read(launch.state_dir / "exit.json")
    assert set(record) >= {"exit_code", "signal", "started_at", "finished_at", "reading"}
    assert (record["exit_code"], record["signal"], record["counters"]) == (4, None, {})
    assert status.reading is not None and status.reading.meter == "estimate"
    assert status.reading.started_at <= status.started_at
    assert status.reading.finished_at >= status.finished_at
    assert status.reading.energy_kwh > 0
    assert isinstance(record["started_at"], str) and record["started_at"].endswith("Z")
    assert parse_time(record["started_at"]) == status.started_at


def test_a_meter_that_cannot_start_does_not_stop_the_job(local_runs: LocalRuns) -> None:
    executor = local_runs.executor(meters=MeterConfig(meters="wattmeter"))
    launch = local_runs.launch(python("print('ran')"))
    status = exited(wait_end(executor, local_runs.submit(executor, launch)))
    assert (status.exit_code, status.reading) == (0, None)
    assert any("energy not measured" in note and "wattmeter" in note for note in status.notes)
    assert launch.log_path.read_text() == "ran\n"


def test_it_says_before_a_run_what_its_meters_will_not_measure(local_runs: LocalRuns) -> None:
    """The notes the engine puts in a start decision, from the meter the supervisor builds."""
    estimated = local_runs.executor(meters=MeterConfig(meters="estimate", power_watts=300.0))
    assert estimated.meter_notes((0,)) == (
        "energy will be an estimate (declared power or a TDP model), not measured",
    )
    unknown = local_runs.executor(meters=MeterConfig(meters="wattmeter"))
    [note] = unknown.meter_notes(())
    assert note.startswith("energy not measured: the meter could not start") and "wattmeter" in note


def test_times_are_on_the_daemons_clock(local_runs: LocalRuns) -> None:
    trace_start = datetime(2023, 5, 4, 12, 0, tzinfo=UTC)
    executor = local_runs.executor(clock=ScaledClock(trace_start, speed=60))
    status = exited(wait_end(executor, local_runs.submit(executor, local_runs.launch(("true",)))))
    assert trace_start <= status.started_at <= status.finished_at
    assert status.finished_at < trace_start + timedelta(hours=1)  # trace time, not the wall
    assert status.reading is not None and status.reading.started_at >= trace_start


@pytest.mark.parametrize(
    ("argv", "cwd", "env", "code", "problem"),
    [
        (("/no/such/binary",), None, None, 127, "command not found"),
        (("no-such-command-anywhere",), None, None, 127, "command not found"),
        (("true",), "/no/such/folder", None, 126, "working directory not found"),
        (("true", "nul\0byte"), None, None, 126, "cannot start"),
        (("true",), None, {"BAD=NAME": "x"}, 126, "cannot start"),
        ((), None, None, 127, "empty command"),
    ],
)
def test_commands_that_cannot_start_are_recorded_exits(
    local_runs: LocalRuns,
    argv: tuple[str, ...],
    cwd: str | None,
    env: dict[str, str] | None,
    code: int,
    problem: str,
) -> None:
    executor = local_runs.executor()
    launch = local_runs.launch(argv, cwd=cwd, env=env)
    status = exited(wait_end(executor, local_runs.submit(executor, launch)))
    assert status.exit_code == code
    assert any(problem in note for note in status.notes), status.notes
    assert status.started_at == status.finished_at


def test_a_file_that_is_not_executable_exits_126(local_runs: LocalRuns) -> None:
    script = local_runs.root / "script.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)
    executor = local_runs.executor()
    status = exited(
        wait_end(executor, local_runs.submit(executor, local_runs.launch((str(script),))))
    )
    assert status.exit_code == 126
    assert any("cannot execute" in note for note in status.notes)


def test_never_two_live_runs_on_one_gpu(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    first = local_runs.submit(executor, local_runs.launch(sleeping(), gpus=(0,)))
    with pytest.raises(ExecutorError, match="already in use"):
        executor.submit(local_runs.launch(("true",), gpus=(1, 0)))
    assert (
        exited(
            wait_end(executor, local_runs.submit(executor, local_runs.launch(("true",), gpus=(1,))))
        ).exit_code
        == 0
    )
    executor.cancel(first)
    assert exited(wait_end(executor, first)).exit_code == 143
    second = local_runs.submit(executor, local_runs.launch(("true",), gpus=(0,)))
    assert exited(wait_end(executor, second)).exit_code == 0


def test_a_run_that_ended_unpolled_frees_its_gpus(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    launch = local_runs.launch(("true",), gpus=(0,))
    local_runs.submit(executor, launch)
    wait_for(lambda: (launch.state_dir / "exit.json").exists(), "the first run to end")
    second = local_runs.submit(executor, local_runs.launch(("true",), gpus=(0,)))
    assert exited(wait_end(executor, second)).exit_code == 0


def test_attached_runs_hold_their_gpus(local_runs: LocalRuns) -> None:
    handle = local_runs.submit(local_runs.executor(), local_runs.launch(sleeping(), gpus=(1,)))
    restarted = local_runs.executor()
    assert restarted.attach(handle) == Running()
    with pytest.raises(ExecutorError, match="already in use"):
        restarted.submit(local_runs.launch(("true",), gpus=(1,)))


def with_grandchild(local_runs: LocalRuns, executor: LocalExecutor) -> tuple[Launch, Handle, int]:
    """A run whose command starts a child of its own; returns that grandchild's pid too."""
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    launch = local_runs.launch(python(code))
    handle = local_runs.submit(executor, launch)
    return launch, handle, int(wait_for(lambda: text_of(launch.log_path), "the grandchild"))


def test_cancel_stops_the_whole_process_group(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    _, handle, grandchild = with_grandchild(local_runs, executor)
    executor.cancel(handle, force=True)
    assert exited(wait_end(executor, handle)).exit_code == 137
    wait_for(lambda: process_gone(grandchild), "the grandchild to be stopped", timeout=5)


def test_sigterm_to_the_supervisor_reaches_the_command_and_is_recorded(
    local_runs: LocalRuns,
) -> None:
    executor = local_runs.executor()
    launch = local_runs.launch(sleeping())
    handle = local_runs.submit(executor, launch)
    wait_for(lambda: (launch.state_dir / "started.json").exists(), "the command to start")
    supervisor = read(launch.state_dir / "supervisor.json")["pid"]
    assert isinstance(supervisor, int)
    os.kill(supervisor, signal.SIGTERM)
    status = exited(wait_end(executor, handle))
    assert (status.exit_code, status.signal) == (143, signal.SIGTERM)
    assert "SIGTERM forwarded to the command" in status.notes


def test_cancel_at_once_after_submit_never_loses_the_run(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    launches = [local_runs.launch(sleeping()) for _ in range(3)]
    handles = [local_runs.submit(executor, launch) for launch in launches]
    for handle in handles:
        executor.cancel(handle)
    for handle in handles:
        assert exited(wait_end(executor, handle)).exit_code == 143


def test_the_supervisor_outlives_the_process_that_started_it(
    local_runs: LocalRuns, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    starter = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from greenai.executors.base import Launch\n"
        "from greenai.executors.local import LocalExecutor\n"
        "from greenai.meters.config import MeterConfig\n"
        "executor = LocalExecutor(MeterConfig(meters='estimate', power_watts=100.0))\n"
        f"command = {gated(gate, 7)!r}\n"
        "launch = Launch('job-outlive', 1, command, 0, (), Path(sys.argv[1]))\n"
        "print(json.dumps(executor.submit(launch).to_json()), flush=True)\n"
        "time.sleep(60)\n"
    )
    daemon = subprocess.Popen(
        [sys.executable, "-c", starter, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True
    )
    assert daemon.stdout is not None
    line = daemon.stdout.readline()
    daemon.kill()
    daemon.wait(timeout=10)
    daemon.stdout.close()
    handle = Handle.from_json(json.loads(line))
    executor = local_runs.adopt(handle)
    assert executor.attach(handle) == Running()
    wait_for(lambda: (tmp_path / "run" / "started.json").exists(), "the command to start")
    assert executor.poll(handle) == Running()
    released_at = utc_now()
    gate.touch()
    status = exited(wait_end(executor, handle))
    assert status.exit_code == 7
    assert status.started_at < released_at <= status.finished_at
    assert status.reading is not None and status.reading.energy_kwh > 0
    assert status.reading.started_at <= status.started_at
    assert status.reading.finished_at >= status.finished_at


def test_a_killed_supervisor_is_lost_and_its_command_is_stopped(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    launch, handle, grandchild = with_grandchild(local_runs, executor)
    child = read(launch.state_dir / "started.json")["pid"]
    supervisor = read(launch.state_dir / "supervisor.json")["pid"]
    assert isinstance(child, int) and isinstance(supervisor, int)
    os.kill(supervisor, signal.SIGKILL)
    status = wait_end(executor, handle)
    assert isinstance(status, Lost)
    assert "died without recording an exit" in status.reason and "stopped" in status.reason
    wait_for(lambda: process_gone(child) and process_gone(grandchild), "them to stop", timeout=5)
    again = local_runs.executor().attach(handle)  # nothing left to stop by now
    assert isinstance(again, Lost) and "died without recording an exit" in again.reason


def test_a_supervisor_that_never_came_up_is_lost_after_a_grace(local_runs: LocalRuns) -> None:
    from greenai.executors.supervisor import launch_record, write_record

    launch = local_runs.launch(("true",))
    launch.state_dir.mkdir(parents=True)
    launch_file = launch.state_dir / "launch.json"
    write_record(launch_file, launch_record(launch, ESTIMATE, {"kind": "system"}))
    restarted = local_runs.executor()
    handle = restarted.handle_for(launch)
    assert restarted.attach(handle) == Running()  # it may still be starting
    os.utime(launch_file, (0, 0))
    status = restarted.attach(handle)
    assert status == Lost("its supervisor never started")
    assert read(launch.state_dir / "cancel.json")["reason"] == "supervisor too late"


def test_a_legacy_pid_handle_is_stopped_and_lost(local_runs: LocalRuns) -> None:
    env = {**os.environ, "GREENAI_JOB_ID": "job-old"}
    orphan = subprocess.Popen(list(sleeping()), env=env, start_new_session=True)
    try:
        executor = local_runs.executor()
        other = Handle("local", "job-other", 1, {"pid": orphan.pid})
        assert isinstance(executor.attach(other), Lost)
        assert orphan.poll() is None
        legacy = Handle.from_json(
            {"executor": "local", "job_id": "job-old", "attempt": 1, "ref": {"pid": orphan.pid}}
        )
        assert executor.attach(legacy) == Lost(LEGACY_STOPPED)
        assert orphan.wait(timeout=10) == -signal.SIGKILL
    finally:
        orphan.kill()
        orphan.wait(timeout=10)


def test_handles_of_other_executors_and_relaunches_are_refused(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()
    with pytest.raises(ExecutorError, match="not a local run"):
        executor.poll(Handle("slurm", "job-1", 1, {"state_dir": "/tmp"}))
    with pytest.raises(ExecutorError, match="no state folder"):
        executor.poll(Handle("local", "job-1", 1, {}))
    launch = local_runs.launch(("true",))
    wait_end(executor, local_runs.submit(executor, launch))
    with pytest.raises(ExecutorError, match="launched before"):
        executor.submit(launch)


def test_a_supervisor_that_cannot_start_is_an_executor_error(local_runs: LocalRuns) -> None:
    executor = local_runs.executor(python="/no/such/python")
    launch = local_runs.launch(("true",), gpus=(0,))
    with pytest.raises(ExecutorError, match="cannot start its supervisor"):
        executor.submit(launch)
    assert executor.poll(executor.handle_for(launch)) == Lost("never launched")
    executor = local_runs.executor()
    assert exited(wait_end(executor, local_runs.submit(executor, launch))).exit_code == 0


def test_a_clock_no_other_process_can_keep_is_refused() -> None:
    from tests.fakes import FrozenClock

    with pytest.raises(TypeError, match="FrozenClock"):
        LocalRuns(Path()).executor(clock=FrozenClock(datetime(2024, 1, 1, tzinfo=UTC)))


def test_the_supervisor_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "import greenai.executors.supervisor\n"
        "heavy = {'numpy', 'httpx', 'pydantic', 'fastapi', 'sqlalchemy', 'codecarbon'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("text", "slots"), [("4", (0, 1, 2, 3)), ("0,2,3", (0, 2, 3)), ("0", ()), ("5,", (5,))]
)
def test_gpu_slots_are_a_count_or_a_list(text: str, slots: tuple[int, ...]) -> None:
    assert parse_gpu_slots(text) == slots


@pytest.mark.parametrize("text", ["two", "1,1", "-1,2"])
def test_bad_gpu_slots_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="gpu_slots"):
        parse_gpu_slots(text)


def test_pick_gpus_takes_free_slots_in_order() -> None:
    assert pick_gpus((0, 1, 2, 3), {1}, 2) == (0, 2)
    assert pick_gpus((0, 1), {0}, 2) is None
