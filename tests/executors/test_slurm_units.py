"""The Slurm executor's pure parts: the command lines it builds and what it reads from
``squeue`` and ``sacct`` (text recorded from Slurm 22.05, Debian 12, run with ``TZ=UTC``,
but for jobs 20 and 21 of ``SACCT``, written by hand in that format: no energy plugin can run
on the machine that recorded the rest); and the executor itself over a recorded runner."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from greenai.core.domain import Action, Decision
from greenai.core.errors import ConfigError, ExecutorError
from greenai.core.settings import Settings
from greenai.core.time import ScaledClock
from greenai.daemon.wiring import build_executor
from greenai.evidence.provenance import energy_methods
from greenai.executors.base import Exited, Launch, Lost, Running
from greenai.executors.slurm import SlurmExecutor
from greenai.executors.slurm_argv import (
    batch_script,
    job_name,
    move_argv,
    sacct_argv,
    sbatch_argv,
    scancel_argv,
    slurm_time,
    squeue_argv,
    time_limit,
)
from greenai.executors.slurm_parse import exit_status, exited_from, parse_sacct, parse_squeue
from greenai.executors.slurm_settings import SlurmSettings
from greenai.oneshot.slurm_submit import planned_begin

UTC_PLAN = datetime(2026, 12, 3, 17, 30, 0, 250_000, tzinfo=UTC)
SQUEUE = """\
3|CANCELLED|BeginTime|2026-12-03T17:20:46|2026-12-03T17:20:46
1|FAILED|NonZeroExitCode|2026-12-03T17:18:22|2026-12-03T17:18:22
4|PENDING|BeginTime|2026-12-03T17:27:27|NONE
5|RUNNING|None|2026-12-03T17:22:27|NONE
"""
SACCT = """\
1|FAILED|3:0|2026-12-03T17:18:22|2026-12-03T17:18:22|
1.batch|FAILED|3:0|2026-12-03T17:18:22|2026-12-03T17:18:22|0
2|FAILED|0:15|2026-12-03T17:19:05|2026-12-03T17:19:08|
2.batch|CANCELLED|0:15|2026-12-03T17:19:05|2026-12-03T17:19:08|0
4|CANCELLED by 0|0:0|2026-12-03T17:22:29|2026-12-03T17:22:29|0
12|CANCELLED by 0|0:0|2026-12-03T17:23:22|2026-12-03T17:23:24|
12.batch|CANCELLED|0:15|2026-12-03T17:23:22|2026-12-03T17:23:24|0
20|COMPLETED|0:0|2026-12-03T18:00:00|2026-12-03T19:00:00|7200000
20.batch|COMPLETED|0:0|2026-12-03T18:00:00|2026-12-03T19:00:00|7200000
21|RUNNING|0:0|2026-12-03T18:00:00|Unknown|
21.batch|RUNNING|0:0|2026-12-03T18:00:00|Unknown|0
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def launch(tmp_path: Path, **options: object) -> Launch:
    defaults: dict[str, object] = {"gpus": 0, "gpu_ids": ()}
    defaults.update(options)
    return Launch(
        "job-1",
        2,
        ("python", "train.py", "--lr", "1e-3 x"),
        state_dir=tmp_path / "j" / "2",
        **defaults,
    )  # type: ignore[arg-type]


# -- command lines ------------------------------------------------------------------------


def test_sbatch_argv_holds_the_job_until_its_planned_start_and_names_it(tmp_path: Path) -> None:
    stop = datetime(2026, 12, 4, 6, 0, 0, 900_000, tzinfo=UTC)
    argv = sbatch_argv(
        launch(tmp_path, gpus=2, stop_at=stop, max_runtime=timedelta(hours=25, seconds=1)),
        begin=UTC_PLAN,
        sbatch="/opt/slurm/bin/sbatch",
        partition="gpu",
        account="green",
        extra=["--qos=low"],
    )
    name = job_name(launch(tmp_path))
    assert argv == [
        "/opt/slurm/bin/sbatch",
        "--parsable",
        f"--job-name={name}",
        "--comment=greenai job job-1 attempt 2",
        f"--output={tmp_path / 'j' / '2' / 'output.log'}",
        f"--chdir={tmp_path / 'j' / '2'}",
        "--export=ALL",
        "--begin=2026-12-03T17:30:01",  # 17:30:00.25 rounded up: never before the plan
        "--deadline=2026-12-04T06:00:00",  # rounded down: never past the stop
        "--time=1-01:00:01",
        "--gres=gpu:2",
        "--partition=gpu",
        "--account=green",
        "--qos=low",
        "--wrap=exec python train.py --lr '1e-3 x'",
    ]
    assert name.startswith("greenai-job-1-2-")


def test_sbatch_argv_without_gpus_begin_or_limits_asks_for_none(tmp_path: Path) -> None:
    argv = sbatch_argv(launch(tmp_path, cwd="/data"))
    assert "--chdir=/data" in argv
    assert not [
        a
        for a in argv
        if a.split("=")[0]
        in ("--gres", "--begin", "--deadline", "--time", "--partition", "--account")
    ]


def test_slurm_times_are_utc_whole_seconds() -> None:
    cet = timezone(timedelta(hours=1))
    assert slurm_time(datetime(2026, 12, 3, 18, 30, tzinfo=cet)) == "2026-12-03T17:30:00"
    assert slurm_time(UTC_PLAN) == "2026-12-03T17:30:00"
    assert slurm_time(UTC_PLAN, round_up=True) == "2026-12-03T17:30:01"
    assert slurm_time(UTC_PLAN.replace(microsecond=0), round_up=True) == "2026-12-03T17:30:00"
    assert time_limit(timedelta(seconds=0.2)) == "0-00:00:01"


def test_job_names_differ_by_state_folder(tmp_path: Path) -> None:
    assert job_name(launch(tmp_path)) == job_name(launch(tmp_path))
    assert job_name(launch(tmp_path)) != job_name(launch(tmp_path / "other"))


def test_the_batch_script_execs_the_command_quoted() -> None:
    assert batch_script(["echo", "a b", "$HOME", "it's"]) == "exec echo 'a b' '$HOME' 'it'\"'\"'s'"


def test_cancel_move_and_query_command_lines() -> None:
    assert scancel_argv("42", pending=True, force=True) == ["scancel", "42"]
    assert scancel_argv("42", pending=False, force=False) == [
        "scancel",
        "--full",
        "--signal=TERM",
        "42",
    ]
    assert scancel_argv("42", pending=False, force=True)[2] == "--signal=KILL"
    assert move_argv("42", UTC_PLAN) == [
        "scontrol",
        "update",
        "JobId=42",
        "StartTime=2026-12-03T17:30:01",
    ]
    assert squeue_argv(job_id="42")[-1] == "--jobs=42"
    assert sacct_argv(name="greenai-x")[-2:] == ["--name=greenai-x", "--starttime=2000-01-01"]


# -- reading Slurm ------------------------------------------------------------------------


def test_parse_squeue_reads_states_reasons_and_times() -> None:
    jobs = {job.job_id: job for job in parse_squeue(SQUEUE)}
    assert (jobs["4"].state, jobs["4"].reason, jobs["4"].start, jobs["4"].end) == (
        "PENDING", "BeginTime", at("2026-12-03T17:27:27"), None,
    )  # fmt: skip
    assert jobs["4"].pending and not jobs["4"].final
    assert not jobs["5"].pending and not jobs["5"].final
    assert jobs["1"].final and jobs["3"].final


def test_parse_sacct_folds_steps_into_their_job() -> None:
    jobs = {job.job_id: job for job in parse_sacct(SACCT)}
    assert sorted(jobs, key=int) == ["1", "2", "4", "12", "20", "21"]
    assert (jobs["1"].state, jobs["1"].exit_code, jobs["1"].batch_exit_code) == (
        "FAILED",
        "3:0",
        "3:0",
    )
    assert jobs["4"].state == "CANCELLED" and jobs["4"].batch_exit_code is None
    assert jobs["12"].energy_j is None  # 0 and empty: no energy plugin measured it
    assert jobs["20"].energy_j == 7_200_000
    assert not jobs["21"].final and jobs["21"].end is None


@pytest.mark.parametrize(
    ("text", "status"),
    [("0:0", (0, None)), ("3:0", (3, None)), ("0:15", (143, 15)), ("0:9", (137, 9))],
)
def test_exit_codes_read_as_a_shell_reports_them(text: str, status: tuple[int, int | None]) -> None:
    assert exit_status(text) == status


def test_a_failed_job_exits_with_its_own_code_and_its_times() -> None:
    (record,) = [j for j in parse_sacct(SACCT) if j.job_id == "1"]
    assert exited_from(record, 0) == Exited(3, at("2026-12-03T17:18:22"), at("2026-12-03T17:18:22"))


def test_a_job_killed_by_sigterm_exits_143() -> None:
    (record,) = [j for j in parse_sacct(SACCT) if j.job_id == "2"]
    exited = exited_from(record, 0)
    assert (exited.exit_code, exited.signal, exited.finished_at) == (
        143,
        15,
        at("2026-12-03T17:19:08"),
    )


def test_a_cancelled_job_ends_with_the_signal_greenai_asked_for() -> None:
    jobs = {job.job_id: job for job in parse_sacct(SACCT)}
    assert (
        exited_from(jobs["12"], 0, cancelled_signal=9).exit_code,
        exited_from(jobs["12"], 0).exit_code,
    ) == (137, 143)
    pending = exited_from(jobs["4"], 0, cancelled_signal=15)
    assert (pending.exit_code, pending.started_at, pending.finished_at) == (
        143,
        at("2026-12-03T17:22:29"),
        at("2026-12-03T17:22:29"),
    )
    assert pending.notes == ("slurm job 4 was cancelled before it started",)


def test_timeout_and_deadline_are_limits() -> None:
    times = "2026-12-03T18:00:00|2026-12-03T18:01:00"
    base = f"30|{{}}|0:15|{times}|\n30.batch|CANCELLED|0:15|{times}|0\n"
    (timeout,) = parse_sacct(base.format("TIMEOUT"))
    (deadline,) = parse_sacct(base.format("DEADLINE"))
    assert "max runtime" in str(exited_from(timeout, 0).limit)
    assert "deadline" in str(exited_from(deadline, 0).limit)


def test_consumed_energy_is_the_reading_with_meter_slurm_and_says_so() -> None:
    (record,) = [j for j in parse_sacct(SACCT) if j.job_id == "20"]
    reading = exited_from(record, 1).reading
    assert reading is not None
    assert (reading.meter, reading.cpu_kwh, reading.gpu_count) == ("slurm", 2.0, 1)
    assert math.isclose(reading.energy_kwh, 2.0)
    assert "ConsumedEnergyRaw" in reading.notes[0]
    assert energy_methods(reading) == {"cpu": "slurm", "gpu": "included", "ram": "included"}


def test_without_consumed_energy_there_is_no_reading() -> None:
    (record,) = [j for j in parse_sacct(SACCT) if j.job_id == "1"]
    assert exited_from(record, 0).reading is None  # the engine's stand-in (estimate) then


# -- settings and wiring ------------------------------------------------------------------


def test_settings_come_from_the_given_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENAI_SLURM_PARTITION", "from-os")
    settings = SlurmSettings.from_env(
        {
            "GREENAI_SLURM_PARTITION": "gpu",
            "GREENAI_SLURM_SBATCH_ARGS": "--qos=low --exclusive",
            "GREENAI_SLURM_BIN_DIR": "/opt/slurm/bin",
        }
    )
    assert settings.partition == "gpu"
    assert settings.extra_args == ["--qos=low", "--exclusive"]
    assert settings.binary("sbatch") == "/opt/slurm/bin/sbatch"
    assert SlurmSettings.from_env({}).binary("squeue") == "squeue"
    assert SlurmSettings.from_env({}).partition is None  # not the process's "from-os"


def test_a_bad_setting_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="slurm executor: GREENAI_SLURM_AHEAD_HOURS: Input"):
        SlurmSettings.from_env({"GREENAI_SLURM_AHEAD_HOURS": "-1"})


def test_the_daemon_builds_the_slurm_executor_by_name(tmp_path: Path) -> None:
    executor = build_executor(Settings(home=tmp_path, executor="slurm"), clock=None)  # type: ignore[arg-type]
    assert isinstance(executor, SlurmExecutor)
    assert (executor.picks_gpus, executor.can_pause) == (True, False)


# -- the executor over a recorded runner ---------------------------------------------------


class Recorded:
    """Answers each Slurm command with the text recorded for its program."""

    def __init__(self, **answers: str | Exception) -> None:
        self.answers = answers
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, argv: Sequence[str], env: Mapping[str, str]) -> str:
        self.calls.append((list(argv), dict(env)))
        answer = self.answers[Path(argv[0]).name]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_submit_passes_only_allowed_env_and_returns_the_slurm_job_id(tmp_path: Path) -> None:
    runner = Recorded(sbatch="77\n")
    executor = SlurmExecutor(
        runner=runner,
        base_env={
            "PATH": "/bin",
            "HOME": "/root",
            "WATTTIME_PASSWORD": "x",
            "OTHER": "y",
            "SLURM_CONF": "/etc/s.conf",
        },
        env_allow={"PATH", "HOME", "WATTTIME_PASSWORD"},
    )
    job = launch(tmp_path, env={"LR": "1"})
    handle = executor.submit_at(job, UTC_PLAN)
    assert handle.ref == {**executor.handle_for(job).ref, "job_id": "77"}
    argv, env = runner.calls[0]
    assert "--begin=2026-12-03T17:30:01" in argv
    assert env == {
        "PATH": "/bin",
        "HOME": "/root",
        "SLURM_CONF": "/etc/s.conf",
        "LR": "1",
        "GREENAI_JOB_ID": "job-1",
        "GREENAI_ATTEMPT": "2",
        "TZ": "UTC",
    }


def test_sbatch_refusing_is_an_executor_error(tmp_path: Path) -> None:
    executor = SlurmExecutor(
        runner=Recorded(sbatch=ExecutorError("sbatch: error: invalid partition"))
    )
    with pytest.raises(ExecutorError, match="invalid partition"):
        executor.submit(launch(tmp_path))
    with pytest.raises(ExecutorError, match="not a job id"):
        SlurmExecutor(runner=Recorded(sbatch="Submitted batch job 5\n")).submit(launch(tmp_path))


def test_poll_waits_for_accounting_after_the_controller_says_it_ended(tmp_path: Path) -> None:
    handle = SlurmExecutor().handle_for(launch(tmp_path))
    ended = "9|COMPLETED|None|2026-12-03T17:18:22|2026-12-03T17:18:23\n"
    assert SlurmExecutor(runner=Recorded(squeue=ended, sacct="")).poll(handle) == Running()
    done = "9|COMPLETED|0:0|2026-12-03T17:18:22|2026-12-03T17:18:23|\n"
    status = SlurmExecutor(runner=Recorded(squeue=ended, sacct=done)).poll(handle)
    assert status == Exited(0, at("2026-12-03T17:18:22"), at("2026-12-03T17:18:23"))


def test_a_job_slurm_never_heard_of_is_lost_and_cancel_does_nothing(tmp_path: Path) -> None:
    runner = Recorded(
        squeue=ExecutorError("squeue: slurm_load_jobs error: Invalid job id specified"), sacct=""
    )
    executor = SlurmExecutor(runner=runner)
    handle = executor.handle_for(launch(tmp_path))
    assert executor.poll(handle) == Lost("never launched")
    executor.cancel(handle)
    assert [Path(argv[0]).name for argv, _ in runner.calls] == ["squeue", "sacct", "squeue"]


def test_move_updates_only_a_pending_job(tmp_path: Path) -> None:
    pending = Recorded(squeue="4|PENDING|BeginTime|2026-12-03T17:27:27|NONE\n", scontrol="")
    executor = SlurmExecutor(runner=pending)
    handle = executor.handle_for(launch(tmp_path))
    assert executor.move(handle, UTC_PLAN)
    assert pending.calls[-1][0] == [
        "scontrol",
        "update",
        "JobId=4",
        "StartTime=2026-12-03T17:30:01",
    ]
    running = Recorded(squeue="4|RUNNING|None|2026-12-03T17:27:27|NONE\n")
    assert not SlurmExecutor(runner=running).move(handle, UTC_PLAN)
    with pytest.raises(ExecutorError, match="cannot pause"):
        executor.pause(handle, 15, 1.0)


def test_a_deferral_on_a_replayed_trace_begins_at_the_wall_time_it_maps_to() -> None:
    clock = ScaledClock(datetime(2023, 3, 15, 18, tzinfo=UTC), speed=3600)
    now = clock.now()
    defer = Decision(now, "j", "threshold", Action.DEFER, "too dirty",
                     planned_start=now + timedelta(hours=3))  # fmt: skip
    before = datetime.now(UTC)
    begin = planned_begin(defer, now, clock)
    assert before + timedelta(seconds=3) <= begin <= datetime.now(UTC) + timedelta(seconds=3)
    start = Decision(now, "j", "threshold", Action.START, "clean")
    assert before <= planned_begin(start, now, clock) <= datetime.now(UTC)


def test_a_slurm_that_cannot_be_asked_leaves_the_run_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = ExecutorError("squeue: error: Unable to contact slurm controller (connect failure)")
    executor = SlurmExecutor(runner=Recorded(squeue=down))
    handle = executor.handle_for(launch(tmp_path))
    assert executor.poll(handle) == Running()  # not Lost: the engine would run it twice
    assert executor.attach(handle) == Running()
    assert "Unable to contact slurm controller" in caplog.text
    with pytest.raises(ExecutorError, match="Unable to contact"):
        executor.cancel(handle)  # the engine asks again on its next tick
