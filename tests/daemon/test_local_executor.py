"""The local executor runs real subprocesses: GPUs, logs, env, cancel, orphans."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenai.core.errors import ConfigError, ExecutorError
from greenai.executors.base import Handle, Launch, parse_gpu_slots, pick_gpus
from greenai.executors.local import LocalExecutor
from tests.daemon.helpers import python


def wait_for(executor: LocalExecutor, handle: Handle, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while (code := executor.poll(handle)) is None:
        assert time.monotonic() < deadline, "command did not finish"
        time.sleep(0.01)
    return code


def launch(tmp_path: Path, argv: tuple[str, ...], gpus: tuple[int, ...] = (0,), **kw: object):
    return Launch("job-1", 1, argv, gpus, tmp_path / "logs" / "job-1.log", **kw)  # type: ignore[arg-type]


def test_command_gets_its_gpus_env_cwd_and_log(tmp_path: Path) -> None:
    executor = LocalExecutor(base_env={"PATH": os.environ["PATH"]})
    code = "import os; print(os.environ['CUDA_VISIBLE_DEVICES'], os.environ['X'], os.getcwd())"
    handle = executor.submit(
        launch(tmp_path, python(code), (2, 3), cwd=str(tmp_path), env={"X": "yes"})
    )
    assert wait_for(executor, handle) == 0
    assert handle.log_path.read_text().split() == ["2,3", "yes", str(tmp_path)]


def test_exit_code_and_stderr_reach_the_log(tmp_path: Path) -> None:
    executor = LocalExecutor()
    handle = executor.submit(launch(tmp_path, python("import sys; sys.exit('boom')")))
    assert wait_for(executor, handle) == 1
    assert "boom" in handle.log_path.read_text()


def test_missing_command_is_an_executor_error(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="cannot start"):
        LocalExecutor().submit(launch(tmp_path, ("/no/such/binary",)))


def test_never_two_live_commands_on_one_gpu(tmp_path: Path) -> None:
    executor = LocalExecutor()
    first = executor.submit(launch(tmp_path, python("import time; time.sleep(5)"), (0,)))
    with pytest.raises(ExecutorError, match="already in use"):
        executor.submit(launch(tmp_path, ("true",), (0, 1)))
    executor.cancel(first)
    assert wait_for(executor, first) == -15
    second = executor.submit(launch(tmp_path, ("true",), (0,)))
    assert wait_for(executor, second) == 0


def test_cancel_stops_the_whole_process_group(tmp_path: Path) -> None:
    executor = LocalExecutor()
    code = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "print(p.pid, flush=True); time.sleep(30)"
    )
    handle = executor.submit(launch(tmp_path, python(code)))
    deadline = time.monotonic() + 10
    while not handle.log_path.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child = int(handle.log_path.read_text())
    executor.cancel(handle, force=True)
    assert wait_for(executor, handle) == -9
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and _state(child) != "Z":
        assert time.monotonic() < deadline, "child survived the cancel"
        time.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_stop_orphan_kills_only_the_job_it_names(tmp_path: Path) -> None:
    env = {**os.environ, "GREENAI_JOB_ID": "job-9"}
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], env=env, start_new_session=True
    )
    executor = LocalExecutor()
    assert not executor.stop_orphan("job-other", orphan.pid)
    assert orphan.poll() is None
    assert executor.stop_orphan("job-9", orphan.pid)
    assert orphan.wait(timeout=5) == -9


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
