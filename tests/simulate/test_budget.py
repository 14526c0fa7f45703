"""``greenai simulate --budget-kg X --budget-period P``: jobs that would overrun the budget are
held until the period rolls over or rejected, and the result says so (docs/formats.md §3)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import greenai.cli.simulate  # noqa: F401  (registers the command)
from greenai.cli.app import app
from greenai.simulate import BudgetSettings, SimulationSettings, run_files

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
TRACE = DATA / "gb-2023-hourly.csv"
# a fits the first day's 8 kg; b would overrun it and can wait a day; c cannot wait
WORKLOAD = (
    "id,submit,duration_min,max_delay_min,power_kw,interruptible\n"
    "a,2023-03-01T09:00:00Z,360,1440,5.6,0\n"
    "b,2023-03-01T09:00:00Z,360,1440,5.6,0\n"
    "c,2023-03-01T09:00:00Z,360,120,5.6,0\n"
    "d,2023-03-03T09:00:00Z,120,600,2,1\n"
)


@pytest.fixture
def workload(tmp_path: Path) -> Path:
    path = tmp_path / "w.csv"
    path.write_text(WORKLOAD, encoding="utf-8")
    return path


@pytest.mark.parametrize("policy", ["window", "now", "interruptible", "fleet"])
def test_held_and_rejected_jobs_and_the_budget_used_are_reported(
    workload: Path, policy: str
) -> None:
    budget = BudgetSettings(8.0, timedelta(days=1))
    settings = SimulationSettings(policy=policy, capacity=4, budget=budget)
    result, _, _ = run_files(TRACE, workload, settings)
    keys = list(result)
    assert keys.index("budget") == len(keys) - 2 and keys[-1] == "jobs_detail"
    summary = result["budget"]
    assert (summary["kg"], summary["period"]) == (8.0, "1d")
    assert (summary["held"], summary["rejected"], result["rejected"]) == (1, 1, 1)
    detail = {job["id"]: job for job in result["jobs_detail"]}
    assert detail["c"]["segments"] == [] and detail["c"]["late"] is False
    assert detail["b"]["segments"][0][0] >= "2023-03-02T00:00:00Z"  # after the roll-over
    assert result["sla_violations"] == 0
    used = [period["used_kg"] for period in summary["periods"]]
    assert summary["periods"][0]["start"] == "2023-03-01T00:00:00Z"
    assert all(kg <= 8.0 for kg in used)  # perfect forecast: the estimates are the actuals
    assert sum(used) == pytest.approx(result["emissions_kg"], abs=1e-5)


def test_without_a_budget_the_result_has_no_budget_key(workload: Path) -> None:
    result, _, _ = run_files(TRACE, workload, SimulationSettings())
    assert "budget" not in result and result["rejected"] == 0


def test_the_flags_reach_the_result_and_bad_ones_exit_2(workload: Path) -> None:
    args = ["simulate", "--trace", str(TRACE), "--workload", str(workload)]
    runner = CliRunner()
    outcome = runner.invoke(app, [*args, "--budget-kg", "8", "--budget-period", "24h"])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout)["budget"]["period"] == "1d"
    for flags, named in (
        (["--budget-kg", "0"], "--budget-kg"),
        (["--budget-kg", "nan"], "--budget-kg"),
        (["--budget-kg", "5", "--budget-period", "367d"], "--budget-period"),
        (["--budget-kg", "5", "--budget-period", "weekly"], "--budget-period"),
    ):
        bad = runner.invoke(app, [*args, *flags])
        assert bad.exit_code == 2 and named in bad.stderr, (flags, bad.output)
