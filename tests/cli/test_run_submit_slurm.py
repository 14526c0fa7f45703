"""`greenai run --submit slurm` against the real single-node Slurm of scripts/ensure-slurm.sh:
greenai decides the start (on the GB 2023 trace, replayed 60x) and Slurm holds the job until
exactly then; a clean-enough grid hands it over to run now."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.executors.base import Exited, Handle
from tests.cli.conftest import GB_TRACE, read_decisions
from tests.executors.helpers import wait_end
from tests.executors.slurm_kit import require_slurm, slurm_executor

pytestmark = pytest.mark.slow
Runner = Callable[..., subprocess.CompletedProcess[str]]
# 2023-03-15, GB: 18:00 194.19 ... 21:00 135.3, the first at or below 150: 3 trace hours
# ahead, 3 wall minutes at 60x.
REPLAY = ["--provider", f"trace:{GB_TRACE}", "--trace-start", "2023-03-15T18:00:00Z",
          "--trace-speed", "60", "--defer-seconds", "21600"]  # fmt: skip


@pytest.fixture
def submitted() -> Iterator[list[str]]:
    require_slurm()
    ids: list[str] = []
    yield ids
    for job_id in ids:
        subprocess.run(["scancel", job_id], check=False)


def slurm_handle(job_id: str) -> Handle:
    return Handle("slurm", "cli", 1, {"job_id": job_id})


def test_a_deferred_job_waits_in_slurm_until_greenai_decided(
    greenai_cmd: Runner, greenai_env: dict[str, str], submitted: list[str]
) -> None:
    before = datetime.now(UTC)
    done = greenai_cmd("run", "--submit", "slurm", "--threshold", "150", "--json", *REPLAY,
                       "--", "python3", "-c", "print('trained')")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    submitted.append(out["slurm_job_id"])
    begin = datetime.fromisoformat(out["begin"])
    assert begin.microsecond == 0
    assert abs(begin - (before + timedelta(minutes=3))) < timedelta(seconds=5)
    assert out["decision"]["action"] == "defer"
    job = slurm_executor().queued(slurm_handle(out["slurm_job_id"]))
    assert job is not None
    assert (job.state, job.reason, job.start) == ("PENDING", "BeginTime", begin)
    [logged] = read_decisions(Path(greenai_env["GREENAI_HOME"]))
    assert f"handed to slurm job {out['slurm_job_id']}" in logged["reason"]
    assert "2023-03-15T21:00:00Z (135.3)" in logged["reason"]


def test_a_clean_grid_hands_the_job_over_to_run_now(
    greenai_cmd: Runner, submitted: list[str]
) -> None:
    done = greenai_cmd("run", "--submit", "slurm", "--threshold", "200", *REPLAY,
                       "--", "python3", "-c", "import sys; sys.exit(4)")  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert job_id.isdigit()
    submitted.append(job_id)
    assert f"greenai: slurm job {job_id} begins " in done.stderr
    assert "start: intensity 194.19 <= threshold 200" in done.stderr
    status = wait_end(slurm_executor(), slurm_handle(job_id), timeout=30)
    assert isinstance(status, Exited) and status.exit_code == 4


def test_an_unknown_scheduler_is_a_usage_error(greenai_cmd: Runner) -> None:
    done = greenai_cmd("run", "--submit", "pbs", "--threshold", "150", *REPLAY, "--", "true")
    assert done.returncode == 2
    assert "submit: unknown 'pbs' (choose from slurm)" in done.stderr
