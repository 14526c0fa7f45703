"""The crash harness, small: a real `greenai serve` SIGKILLed at random moments during a
workload of real jobs loses none, runs none twice at once, re-runs no completed one, and
writes exactly one evidence row per finished run. `benchmarks/crash_harness.py --jobs 200
--kills 50` is the full run (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.helpers import crash_harness


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_random_sigkills_lose_nothing_and_run_nothing_twice(tmp_path: Path) -> None:
    result = crash_harness().run(jobs=30, kills=6, slots=3, seed=7, workdir=tmp_path)
    assert result["jobs_lost"] == 0 and result["jobs_failed"] == 0
    assert result["runs_overlapping"] == 0 and result["completed_jobs_rerun"] == 0
    assert result["finished_runs"] == result["evidence_rows"] == 30
    assert result["evidence_rows_twice"] == result["runs_without_row"] == 0
    assert result["rows_without_run"] == 0
