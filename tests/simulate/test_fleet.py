"""``greenai simulate --policy fleet --capacity N``: rigid work keeps its SLA once the planner
has seen its demand, flexible work shares the clean hours, and the CLI takes the fraction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import greenai.cli.simulate  # noqa: F401  (registers the command)
from greenai.cli.app import app
from greenai.core.domain import Job
from greenai.core.errors import ConfigError
from greenai.simulate import SimulationSettings, simulate
from tests.simulate.helpers import make_job, make_trace

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
DAYS = 4


def clean_nights() -> list[float]:
    """300 g/kWh, except 100 from 02:00 to 03:00 every day."""
    return [100.0 if hour % 24 == 2 else 300.0 for hour in range(DAYS * 24)]


def nightly_jobs() -> list[Job]:
    """Each day two flexible 1-GPU jobs at 00:00 that want 02:00, and a rigid 1-GPU job at
    02:20 with no queueing allowance."""
    jobs = []
    for day in range(DAYS - 1):
        base = day * 24 * 60
        jobs += [make_job(f"f{day}{k}", base, 60, 4 * 60) for k in range(2)]
        jobs.append(make_job(f"r{day}", base + 140, 60, 0, flexible=False))
    return jobs


def test_the_rigid_reserve_learned_from_past_days_keeps_rigid_jobs_on_time() -> None:
    trace, jobs = make_trace(clean_nights()), nightly_jobs()
    fleet = simulate(trace, jobs, SimulationSettings("fleet", capacity=2))
    window = simulate(trace, jobs, SimulationSettings("window", capacity=2))
    late = {d["id"] for d in fleet["jobs_detail"] if d["late"]}
    assert late == {"r0"}  # the first night nothing is known of rigid demand yet
    assert fleet["sla_violations_rigid"] == 1 and fleet["sla_violations_flexible"] == 0
    assert window["sla_violations_rigid"] == DAYS - 1  # every night the deferred jobs fill it
    assert fleet["peak_gpus"] <= 2 and window["peak_gpus"] <= 2
    assert fleet["savings_pct"] > 0


def test_fleet_reports_delays_and_the_peak_without_a_capacity() -> None:
    trace, jobs = make_trace(clean_nights()), nightly_jobs()
    result = simulate(trace, jobs, SimulationSettings("fleet"))
    assert result["peak_gpus"] == 3 and result["sla_violations"] == 0
    assert result["p95_delay_min"] == 120.0 and result["rigid_p95_delay_min"] == 0.0


def test_the_flexible_fraction_is_for_fleet_only_and_between_0_and_1() -> None:
    trace, jobs = make_trace(clean_nights()), nightly_jobs()
    with pytest.raises(ConfigError, match="fleet only"):
        simulate(trace, jobs, SimulationSettings("window", max_flexible_fraction=0.5))
    with pytest.raises(ConfigError, match="between 0 and 1"):
        simulate(trace, jobs, SimulationSettings("fleet", max_flexible_fraction=1.5))
    none = simulate(trace, jobs, SimulationSettings("fleet", max_flexible_fraction=0.0))
    assert none["savings_pct"] == 0.0  # nothing may wait: everything runs at submit


def test_simulate_fleet_on_the_command_line(tmp_path: Path) -> None:
    workload = tmp_path / "w.csv"
    workload.write_text(
        "id,submit,duration_min,max_delay_min,power_kw,gpus,flexible\n"
        "a,2023-03-01T09:17:00Z,360,480,5.6,2,1\n"
        "b,2023-03-01T10:00:00Z,120,30,2,1,0\n",
        encoding="utf-8",
    )
    args = ["simulate", "--trace", str(DATA / "gb-2023-hourly.csv"), "--workload", str(workload)]
    options = ["--policy", "fleet", "--capacity", "3", "--max-flexible-fraction", "0.3"]
    outcome = CliRunner().invoke(app, [*args, *options])
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(outcome.stdout)
    assert result["policy"] == "fleet" and result["peak_gpus"] == 3
    assert result["sla_violations_rigid"] == 0
    # 12 GPU-h queued, at most 30% may wait: job a is past the fraction and runs at submit
    assert result["jobs_detail"][0]["delay_min"] == 0.0
