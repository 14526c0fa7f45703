"""A running job's draw now (issue 12's dashboard): the supervisor writes what its meters can
tell to ``power.json`` while the command runs, and ``GET /jobs/{id}`` shows it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from greenai.api.power import POWER_FILE, live_power
from greenai.api.schemas import JobOut
from greenai.core.domain import Job, JobState
from greenai.core.time import utc_now
from greenai.executors.supervisor import POWER
from greenai.meters.nvml import NvmlMeter
from greenai.storage.records import JobRecord
from tests.executors.helpers import LocalRuns, sleeping, wait_end, wait_for
from tests.fakes import FrozenClock
from tests.meters.fakes import FakeNvml


def record(log_path: Path, state: JobState = JobState.RUNNING) -> JobRecord:
    now = utc_now()
    job = Job("j-live", now, timedelta(minutes=5), now + timedelta(hours=1), command=("x",))
    return JobRecord(job, state, 1, now, log_path=str(log_path))


def test_a_running_command_reports_the_draw_its_meter_charges(local_runs: LocalRuns) -> None:
    executor = local_runs.executor()  # the estimate meter, declared 100 W
    launch = local_runs.launch(sleeping(3))
    handle = local_runs.submit(executor, launch)
    power_file = launch.state_dir / POWER
    written = wait_for(lambda: power_file.exists() and json.loads(power_file.read_text()),
                       "the first power record")  # fmt: skip
    assert (written["watts"], written["meters"]) == (100.0, "estimate")
    shown = JobOut.of(record(launch.log_path)).power
    assert shown is not None and (shown.watts, shown.meters) == (100.0, "estimate")
    wait_end(executor, handle)


def test_no_live_power_unless_running_and_told(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    assert live_power(record(log)) is None  # nothing written yet
    (tmp_path / POWER_FILE).write_text(
        '{"watts": 250.5, "at": "2024-01-01T00:00:00Z", "meters": "nvml"}'
    )
    assert live_power(record(log)) is not None
    assert live_power(record(log, JobState.SUCCEEDED)) is None  # a finished job draws nothing
    (tmp_path / POWER_FILE).write_text('{"watts": "lots"')  # torn: shown as none, not a 500
    assert live_power(record(log)) is None


def test_nvml_tells_the_draw_of_the_jobs_gpus_and_a_mig_instance_its_share() -> None:
    nvml = FakeNvml([[0], [0]], power_mw=[150_000, 70_000])
    whole = NvmlMeter(FrozenClock(utc_now()), gpus=[0, 1], nvml=nvml, record_seconds=3600)
    token = whole.start()
    assert whole.power_now(token) == 220.0
    whole.stop(token)
    nvml.migs = {"MIG-abc": (1, 1, 7)}
    mig = NvmlMeter(FrozenClock(utc_now()), gpus=["MIG-abc"], nvml=nvml, record_seconds=3600)
    token = mig.start()
    assert mig.power_now(token) == 10.0  # 70 W x 1/7
    mig.stop(token)
