"""The supervisor run by hand on a state folder: it always leaves an exit record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from greenai.executors.base import Launch
from greenai.executors.supervisor import (
    launch_record,
    main,
    read_exit,
    read_launch,
    read_record,
    write_record,
)
from tests.executors.helpers import ESTIMATE

SYSTEM_CLOCK = {"kind": "system"}


def supervise(state_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "greenai.executors.supervisor", str(state_dir)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def launch_in(state_dir: Path, command: tuple[str, ...]) -> Launch:
    state_dir.mkdir(parents=True, exist_ok=True)
    launch = Launch("job-x", 3, command, 0, (), state_dir, env={"X": "1"})
    write_record(state_dir / "launch.json", launch_record(launch, ESTIMATE, SYSTEM_CLOCK))
    return launch


def test_the_launch_record_round_trips(tmp_path: Path) -> None:
    launch_in(tmp_path, ("echo", "hi"))
    spec = read_launch(tmp_path)
    assert (spec.job_id, spec.attempt, spec.command, spec.env) == (
        "job-x",
        3,
        ("echo", "hi"),
        {"X": "1"},
    )
    assert (spec.meters, spec.clock, spec.gpu_ids, spec.cwd) == (ESTIMATE, SYSTEM_CLOCK, (), None)


def test_a_cancel_request_before_start_means_the_command_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    state_dir = tmp_path / "run"
    launch_in(state_dir, ("touch", str(marker)))
    write_record(state_dir / "cancel.json", {"force": True, "reason": "cancelled"})
    supervise(state_dir)
    status = read_exit(state_dir)
    assert status is not None
    assert (status.exit_code, status.signal) == (137, 9)
    assert status.notes == ("cancelled before start (cancelled)",)
    assert not marker.exists() and not (state_dir / "started.json").exists()


@pytest.mark.parametrize("text", ["not json", "[]", '{"job_id": "x"}', '{"command": "ls"}'])
def test_an_unreadable_launch_record_is_still_an_exit(tmp_path: Path, text: str) -> None:
    (tmp_path / "launch.json").write_text(text)
    supervise(tmp_path)
    status = read_exit(tmp_path)
    assert status is not None and status.exit_code == 126
    assert status.notes[0].startswith("cannot launch")


def test_main_wants_exactly_one_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_records_are_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    write_record(path, {"a": 1})
    with pytest.raises(TypeError):
        write_record(path, {"a": object()})
    assert read_record(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
    assert read_record(tmp_path / "missing.json") is None
    path.write_text(json.dumps([1]))
    with pytest.raises(ValueError, match="not a JSON object"):
        read_record(path)
