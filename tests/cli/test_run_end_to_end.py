"""`greenai run` end to end: a real child process on the real GB 2023 trace, replayed fast."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import GB_TRACE, read_decisions, read_evidence

# 2023-03-15, GB: 18:00 194.19, 19:00 186.29, 20:00 174.51, 21:00 135.3 (first <= 150).
REPLAY = [
    "--provider",
    f"trace:{GB_TRACE}",
    "--trace-start",
    "2023-03-15T18:00:00Z",
    "--trace-speed",
    "3600",
    "--defer-seconds",
    "21600",
    "--check-interval",
    "1800",
    "--power-watts",
    "200",
]
Runner = Callable[..., subprocess.CompletedProcess[str]]


def test_defers_until_first_check_at_or_below_threshold_then_runs(
    greenai_cmd: Runner, greenai_env: dict[str, str]
) -> None:
    result = greenai_cmd("run", "--threshold", "150", *REPLAY, "--", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr
    home = Path(greenai_env["GREENAI_HOME"])
    decisions = read_decisions(home)
    actions = [d["action"] for d in decisions]
    assert actions[-1] == "start" and set(actions[:-1]) == {"defer"}
    assert len(actions) == 7  # checks at 18:00, 18:30, ..., 20:30 defer; 21:00 starts
    assert [d["intensity"] for d in decisions[::2]] == [194.19, 186.29, 174.51, 135.3]
    assert decisions[0]["reason"].startswith("intensity 194.19 > threshold 150")
    assert "2023-03-15T21:00:00Z (135.3)" in decisions[0]["reason"]
    assert decisions[-1]["at"].startswith("2023-03-15T21:0")
    assert all(d["provider"] == "trace" and d["signal"] == "average" for d in decisions)

    (row,) = read_evidence(home)
    assert row["exit_code"] == "0"
    assert row["started_at"].startswith("2023-03-15T21:")
    # The run and its counterfactual lie inside single hours of the trace.
    assert float(row["actual_intensity"]) == pytest.approx(135.3)
    assert float(row["counterfactual_intensity"]) == pytest.approx(194.19)
    assert float(row["forecast_intensity"]) == pytest.approx(135.3)
    energy = float(row["energy_kwh"])
    assert energy > 0 and row["meter"] == "estimate"
    assert float(row["operational_g"]) == pytest.approx(energy * 135.3, rel=1e-3)
    assert float(row["saved_g"]) == pytest.approx(energy * (194.19 - 135.3), rel=1e-3)
    assert float(row["delay_s"]) >= 2.5 * 3600  # submitted just after 18:00, started after 21:00


def test_failing_command_passes_its_exit_code_and_leaves_evidence(
    greenai_cmd: Runner, greenai_env: dict[str, str]
) -> None:
    code = "import sys; sys.exit(7)"
    result = greenai_cmd("run", "--threshold", "500", *REPLAY, "--", sys.executable, "-c", code)
    assert result.returncode == 7
    home = Path(greenai_env["GREENAI_HOME"])
    assert [d["action"] for d in read_decisions(home)] == ["start"]
    (row,) = read_evidence(home)
    assert row["exit_code"] == "7"


def test_killed_command_reports_128_plus_signal(
    greenai_cmd: Runner, greenai_env: dict[str, str]
) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    result = greenai_cmd("run", "--threshold", "500", *REPLAY, "--", sys.executable, "-c", code)
    assert result.returncode == 128 + signal.SIGKILL
    (row,) = read_evidence(Path(greenai_env["GREENAI_HOME"]))
    assert row["exit_code"] == str(128 + signal.SIGKILL)


def _wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_sigterm_while_deferring_cancels_and_logs(greenai_env: dict[str, str]) -> None:
    home = Path(greenai_env["GREENAI_HOME"])
    args = ["--threshold", "1", *REPLAY[:4], "--defer-seconds", "3600", "--check-interval", "600"]
    child = subprocess.Popen(
        [sys.executable, "-m", "greenai", "run", *args, "--", sys.executable, "-c", "pass"],
        env=greenai_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: len(read_decisions(home)) >= 1)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=20)
    finally:
        child.kill()
        child.communicate()
    assert child.returncode == 143, stderr
    actions = [d["action"] for d in read_decisions(home)]
    assert actions == ["defer", "expire"]
    assert "interrupted by SIGTERM" in read_decisions(home)[-1]["reason"]
    assert read_evidence(home) == []


def test_sigterm_during_run_is_forwarded_and_evidence_written(
    greenai_env: dict[str, str], tmp_path: Path
) -> None:
    home = Path(greenai_env["GREENAI_HOME"])
    marker = tmp_path / "got-term"
    job = (
        "import signal, sys, time, pathlib\n"
        f"def bye(*_): pathlib.Path({str(marker)!r}).write_text('term'); sys.exit(3)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        f"pathlib.Path({str(marker)!r} + '.ready').write_text('')\n"
        "time.sleep(30)\n"
    )
    command = [sys.executable, "-m", "greenai", "run", "--threshold", "500", *REPLAY]
    child = subprocess.Popen(
        [*command, "--", sys.executable, "-c", job],
        env=greenai_env,
    )
    try:
        _wait_for(lambda: Path(str(marker) + ".ready").exists())
        os.kill(child.pid, signal.SIGTERM)
        assert child.wait(timeout=20) == 3
    finally:
        child.kill()
        child.wait()
    assert marker.read_text() == "term"
    (row,) = read_evidence(home)
    assert row["exit_code"] == "3"


def test_command_not_found_exits_5(greenai_cmd: Runner) -> None:
    result = greenai_cmd("run", "--threshold", "500", *REPLAY, "--", "no-such-command-xyz")
    assert result.returncode == 5
    assert "command not found: no-such-command-xyz" in result.stderr


def test_missing_threshold_is_a_usage_error(greenai_cmd: Runner) -> None:
    result = greenai_cmd("run", *REPLAY, "--", "true")
    assert result.returncode == 2
    assert "threshold" in result.stderr


def test_static_floor_runs_at_once_unless_signal_required(
    greenai_cmd: Runner, greenai_env: dict[str, str]
) -> None:
    ok = greenai_cmd("run", "--threshold", "10", "--provider", "egrid:CAMX", "--", "true")
    assert ok.returncode == 0, ok.stderr
    (decision,) = read_decisions(Path(greenai_env["GREENAI_HOME"]))
    assert decision["action"] == "start"
    assert "no better time to wait for" in decision["reason"]
    assert decision["intensity"] == pytest.approx(497.443 * 0.453592, rel=1e-6)

    refused = greenai_cmd(
        "run", "--threshold", "10", "--provider", "egrid:CAMX", "--require-signal", "--", "true"
    )
    assert refused.returncode == 3
    assert "no intensity signal" in refused.stderr
