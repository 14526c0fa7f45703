"""The supervisor run by hand on a state folder: it always leaves an exit record."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from greenai.executors.base import Launch
from greenai.executors.supervisor import (
    RotatingLog,
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
    assert (spec.base_env, spec.stop_at, spec.grace_s, spec.log_max_bytes, spec.log_backups) == (
        None,
        None,
        30.0,
        None,
        2,
    )


def test_the_limits_and_base_env_round_trip_and_secrets_are_dropped(tmp_path: Path) -> None:
    stop_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    launch = Launch(
        "job-x",
        1,
        ("true",),
        0,
        (),
        tmp_path,
        env={"X": "1", "TOKEN": "secret"},
        stop_at=stop_at,
        grace_s=0.5,
        log_max_bytes=4096,
        log_backups=3,
    )
    base = {"PATH": "/bin", "TOKEN": "secret"}
    record = launch_record(launch, ESTIMATE, SYSTEM_CLOCK, base_env=base, secret_names={"TOKEN"})
    write_record(tmp_path / "launch.json", record)
    spec = read_launch(tmp_path)
    assert (spec.env, spec.base_env, spec.env_dropped) == ({"X": "1"}, {"PATH": "/bin"}, ("TOKEN",))
    assert (spec.stop_at, spec.grace_s, spec.log_max_bytes, spec.log_backups) == (
        stop_at,
        0.5,
        4096,
        3,
    )
    assert "secret" not in (tmp_path / "launch.json").read_text()


def test_a_launch_record_of_an_older_greenai_has_no_limits(tmp_path: Path) -> None:
    old = {"job_id": "j", "attempt": 1, "command": ["true"], "clock": SYSTEM_CLOCK}
    write_record(tmp_path / "launch.json", old)
    spec = read_launch(tmp_path)
    assert (spec.base_env, spec.env_dropped, spec.stop_at, spec.log_max_bytes) == (
        None,
        (),
        None,
        None,
    )


def test_a_rotating_log_splits_at_line_breaks_and_drops_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    log = RotatingLog(path, 10, 2)
    for line in (b"aaaa\nbbbb\n", b"cccc\ndd", b"dd\neeee\n", b"f" * 25):
        log.write(line)
    log.close()
    files = sorted(tmp_path.iterdir())
    assert [file.name for file in files] == ["output.log", "output.log.1", "output.log.2"]
    assert [file.read_bytes() for file in files] == [b"fffff", b"f" * 10, b"f" * 10]
    assert {stat.S_IMODE(file.stat().st_mode) for file in files} == {0o600}


def test_a_rotating_log_keeps_whole_lines_while_they_fit(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    log = RotatingLog(path, 10, 1)
    for line in (b"aaaa\nbbbb\n", b"cccc\ndd", b"dd\neeee\n"):
        log.write(line)
    log.close()
    assert (path.with_name("output.log.1").read_bytes(), path.read_bytes()) == (
        b"cccc\ndddd\n",
        b"eeee\n",
    )


def test_without_backups_a_full_log_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    log = RotatingLog(path, 8, 0)
    log.write(b"1234567\n")
    log.write(b"abc\n")
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["output.log"]
    assert path.read_bytes() == b"abc\n"


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
