"""`greenai run --max-runtime`: the real child is stopped that long after it starts (SIGTERM,
then SIGKILL after GREENAI_GRACE_SECONDS) and greenai exits as a shell would say it ended.
Bounds are generous: a loaded machine may stop a process late, never early."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import read_evidence
from tests.cli.test_run_end_to_end import REPLAY

Runner = Callable[..., subprocess.CompletedProcess[str]]
NOTE = "greenai: stopped after its max runtime 0:00:01"


def run_limited(greenai_cmd: Runner, code: str, limit: str = "1s") -> tuple[int, str, float]:
    """``greenai run --max-runtime limit`` of python ``code``, started at once: its exit code,
    its stderr and how long it took."""
    started = time.monotonic()
    argv = ["run", "--threshold", "500", *REPLAY, "--max-runtime", limit]
    result = greenai_cmd(*argv, "--", sys.executable, "-c", code)
    return result.returncode, result.stderr, time.monotonic() - started


@pytest.fixture
def grace(greenai_env: dict[str, str]) -> Callable[[str], None]:
    def set_grace(seconds: str) -> None:
        greenai_env["GREENAI_GRACE_SECONDS"] = seconds

    return set_grace


def test_a_command_past_its_max_runtime_gets_sigterm_and_exits_143(
    greenai_cmd: Runner, greenai_env: dict[str, str], grace: Callable[[str], None]
) -> None:
    grace("10")
    code, stderr, took = run_limited(greenai_cmd, "import time; time.sleep(30)")
    assert code == 143, stderr
    assert NOTE in stderr and "killed" not in stderr
    assert took < 25  # stopped, not slept out
    (row,) = read_evidence(Path(greenai_env["GREENAI_HOME"]))
    assert row["exit_code"] == "143" and float(row["duration_s"]) >= 1.0


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace_with_its_group(
    greenai_cmd: Runner, grace: Callable[[str], None], tmp_path: Path
) -> None:
    grace("0.5")
    pid_file = tmp_path / "grandchild"
    job = (
        "import pathlib, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    code, stderr, took = run_limited(greenai_cmd, job)
    assert code == 137, stderr
    assert NOTE in stderr and "killed: still running 0.5s after SIGTERM" in stderr
    assert took >= 1.5  # the max runtime, then the whole grace
    assert gone(int(pid_file.read_text()))


def test_a_command_that_exits_0_when_stopped_exits_124(
    greenai_cmd: Runner, grace: Callable[[str], None]
) -> None:
    grace("10")
    job = "import signal, sys, time; signal.signal(15, lambda *_: sys.exit(0)); time.sleep(30)"
    code, stderr, _ = run_limited(greenai_cmd, job)
    assert code == 124, stderr  # as timeout(1): it did not finish
    assert NOTE in stderr


def test_a_command_within_its_max_runtime_is_left_alone(greenai_cmd: Runner) -> None:
    code, stderr, _ = run_limited(greenai_cmd, "import sys; sys.exit(4)", limit="1h")
    assert code == 4, stderr
    assert "max runtime" not in stderr


@pytest.mark.parametrize("limit", ["0", "0s", "soon", "-5m", "367d", "1" + "0" * 400 + "d"])
def test_an_impossible_max_runtime_is_a_usage_error(greenai_cmd: Runner, limit: str) -> None:
    code, stderr, _ = run_limited(greenai_cmd, "pass", limit=limit)
    assert code == 2, stderr
    assert "max_runtime" in stderr


def gone(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (this machine's init may never reap)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False
