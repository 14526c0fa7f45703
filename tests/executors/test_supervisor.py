"""The supervisor run by hand on a state folder: it always leaves an exit record."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from greenai.executors.base import Launch
from greenai.executors.supervisor import (
    LAUNCH_KEY,
    RotatingLog,
    launch_record,
    main,
    new_launch_key,
    read_exit,
    read_launch,
    read_record,
    write_record,
)
from tests.executors.helpers import ESTIMATE

SYSTEM_CLOCK = {"kind": "system"}


def supervise(state_dir: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "greenai.executors.supervisor", str(state_dir)],
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
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


SEALED = "sealed-value-5d1f"
CHECK_SEALED = (
    sys.executable,
    "-c",
    f"import os, sys; sys.exit(0 if os.environ.get('X', '')[::-1] == {SEALED[::-1]!r} "
    f"and {LAUNCH_KEY!r} not in os.environ else 3)",
)


def sealed_launch_in(state_dir: Path) -> bytes:
    """A launch whose env is sealed; the key that opens it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    key = new_launch_key()
    launch = Launch("job-s", 1, CHECK_SEALED, 0, (), state_dir, env={"X": SEALED})
    write_record(
        state_dir / "launch.json", launch_record(launch, ESTIMATE, SYSTEM_CLOCK, env_key=key)
    )
    return key


def test_a_sealed_env_reaches_the_command_through_the_supervisors_key_only(
    tmp_path: Path,
) -> None:
    key = sealed_launch_in(tmp_path)
    assert SEALED.encode() not in (tmp_path / "launch.json").read_bytes()
    assert read_launch(tmp_path).env == {}
    supervise(tmp_path, {**os.environ, LAUNCH_KEY: key.decode()})
    status = read_exit(tmp_path)
    assert status is not None and status.exit_code == 0, status  # X set, the key not passed on


@pytest.mark.parametrize("given", [None, "not-a-key", "new"])
def test_a_sealed_env_without_its_key_is_never_run(tmp_path: Path, given: str | None) -> None:
    sealed_launch_in(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != LAUNCH_KEY}
    if given is not None:
        env[LAUNCH_KEY] = new_launch_key().decode() if given == "new" else given
    supervise(tmp_path, env)
    status = read_exit(tmp_path)
    assert status is not None and status.exit_code == 126
    assert status.notes[0].startswith("cannot launch: its env")
    assert not (tmp_path / "started.json").exists()


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


@pytest.mark.parametrize(
    ("job_env", "expected"),
    [({}, "PCI_BUS_ID"), ({"CUDA_DEVICE_ORDER": "FASTEST_FIRST"}, "FASTEST_FIRST")],
)
def test_the_command_numbers_gpus_by_pci_bus_as_nvml_does_unless_its_env_says(
    tmp_path: Path, job_env: dict[str, str], expected: str
) -> None:
    seen = tmp_path / "order"
    code = f"import os; open({str(seen)!r}, 'w').write(os.environ.get('CUDA_DEVICE_ORDER', '-'))"
    state_dir = tmp_path / "run"
    state_dir.mkdir()
    launch = Launch("job-x", 1, (sys.executable, "-c", code), 0, (), state_dir, env=job_env)
    write_record(state_dir / "launch.json", launch_record(launch, ESTIMATE, SYSTEM_CLOCK))
    supervise(state_dir, {**os.environ, "CUDA_DEVICE_ORDER": "FASTEST_FIRST"})  # the base's
    assert read_exit(state_dir).exit_code == 0
    assert seen.read_text() == expected
