"""A new user offline (issue 12): `serve` says in one line that its source cannot be reached
and how to replay the bundled trace; `./run.sh demo-daemon` shows the real daemon at work."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import respx

from greenai.cli.serve import OFFLINE_HINT, _say_if_unreachable
from greenai.core.settings import load_settings
from greenai.evidence.audit import audit_file
from tests.daemon.conftest import free_port

ROOT = Path(__file__).parents[2]


def test_an_unreachable_source_is_one_line_naming_the_replay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.route().mock(side_effect=httpx.ConnectError("no route to host"))
        _say_if_unreachable(load_settings(env={}, provider="uk"))
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("greenai: uk cannot be reached (")
    assert "jobs start without carbon data" in lines[0] and OFFLINE_HINT in lines[0]


def test_a_trace_or_a_source_that_answers_says_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _say_if_unreachable(load_settings(env={}, provider="egrid:RFCE"))
    trace = ROOT / "greenai" / "data" / "gb-2023-hourly.csv"
    _say_if_unreachable(load_settings(env={}, provider=f"trace:{trace}"))
    assert capsys.readouterr().err == ""


def _has_row(evidence: Path, job_name: str) -> bool:
    if not evidence.exists():
        return False
    return any(line.split(",")[2:3] == [job_name] for line in evidence.read_text().splitlines())


def test_demo_daemon_plans_and_runs_its_example_jobs_offline(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GREENAI_", "WATTTIME_"))},
        "GREENAI_HOME": str(tmp_path / "home"),
        "GREENAI_API_PORT": str(free_port()),
    }
    process = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "demo-daemon.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    seen: list[str] = []
    try:
        for line in process.stdout:
            seen.append(line)
            if "Ctrl-C stops the daemon" in line:
                break
        # The rigid job runs as soon as the one GPU slot is free (a window job may hold it for
        # its 2 s first); the overnight one may wait its whole 18 h (108 s here): not waited for.
        give_up = time.monotonic() + 80
        evidence = tmp_path / "home" / "evidence.csv"
        while time.monotonic() < give_up and not _has_row(evidence, "urgent-rigid"):
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
        process.stdout.close()
    text = "".join(seen)
    assert "on trace time: now is 2023-05-04" in text and text.count(" planned for ") == 3
    result = audit_file(evidence)
    assert result.rows >= 1 and (result.reproduced, result.discrepancies) == (result.rows, [])
    assert _has_row(evidence, "urgent-rigid")
    assert all("2023-05-0" in row for row in evidence.read_text().splitlines()[1:])
