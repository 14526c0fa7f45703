"""``greenai simulate``: the fleet policies, driven by a virtual clock over a recorded trace.

``simulate`` replays one policy and returns the docs/formats.md §3 result; ``run_files`` does the
same from file paths (what the CLI and the benchmarks call).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from greenai.core.domain import Job
from greenai.core.errors import ConfigError, InputError
from greenai.formats.traces import Trace, load_trace
from greenai.formats.workload import WorkloadRow, read_workload
from greenai.policies.base import JobBatch, Policy
from greenai.policies.flexible_fraction import with_flexible_fraction
from greenai.policies.registry import get_policy
from greenai.policies.view import ForecastView
from greenai.policies.windows import Grid
from greenai.simulate.budget import BudgetGate, BudgetSettings, with_budget
from greenai.simulate.engine import Engine, JobRun
from greenai.simulate.forecasts import ForecastModel, make_forecast
from greenai.simulate.result import build_result

__all__ = [
    "BudgetSettings",
    "SimulationSettings",
    "check_inside_trace",
    "run_files",
    "simulate",
]


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    """Everything a run depends on besides its trace and workload."""

    policy: str = "window"
    forecast: str = "perfect"
    seed: int = 0
    horizon_h: float = 48.0
    threshold: float | None = None
    capacity: int | None = None
    debias_h: float = 24.0
    max_flexible_fraction: float | None = None
    budget: BudgetSettings | None = None  # --budget-kg, --budget-period


def simulate(
    trace: Trace, jobs: list[Job], settings: SimulationSettings, policy: Policy | None = None
) -> dict[str, Any]:
    """Replay ``settings.policy`` over ``jobs`` and account its emissions exactly; ``policy``
    replaces the registry's one of that name (benchmarks compare variants of a policy)."""
    if settings.capacity is not None and settings.capacity < 1:
        raise ConfigError("--capacity must be at least 1")
    if settings.horizon_h <= 0:
        raise ConfigError("--horizon-h must be positive")
    policy = _configured(policy or get_policy(settings.policy), settings.max_flexible_fraction)
    model = forecast_model(trace, settings)
    batch = JobBatch.of(jobs, trace.start)
    if settings.threshold is not None:
        batch = replace(batch, threshold=np.full(len(jobs), settings.threshold))
    baseline = _replay(trace, batch, jobs, get_policy("now"), model, settings.capacity)
    gate = None
    if settings.budget is None and policy is get_policy("now"):
        runs = baseline
    else:
        runs, gate = _replay_with(trace, batch, jobs, policy, model, settings)
    header = {
        "policy": policy.name,
        "forecast": settings.forecast,
        "seed": settings.seed,
        "trace": trace.name,
    }
    actual = Grid(trace.actual, trace.step_s)
    result = build_result(header, runs, baseline, actual, trace.start)
    return result if gate is None else with_budget(result, gate)


def _configured(policy: Policy, fraction: float | None) -> Policy:
    """``policy`` with ``--max-flexible-fraction`` applied (only ``fleet`` has one)."""
    try:
        return with_flexible_fraction(policy, fraction)
    except ConfigError as exc:
        raise ConfigError(f"--{str(exc).replace('_', '-')}") from exc


def _replay(
    trace: Trace,
    batch: JobBatch,
    jobs: list[Job],
    policy: Policy,
    model: ForecastModel,
    capacity: int | None,
) -> list[JobRun]:
    span = len(trace) * trace.step_s
    actual = ForecastView(0.0, trace.step_s, trace.actual)
    engine = Engine(batch, jobs, policy, model, trace.step_s, span, capacity, actual)
    return engine.run()


def _replay_with(
    trace: Trace,
    batch: JobBatch,
    jobs: list[Job],
    policy: Policy,
    model: ForecastModel,
    settings: SimulationSettings,
) -> tuple[list[JobRun], BudgetGate | None]:
    """The policy's replay, with its budget's admission when one is set."""
    span = len(trace) * trace.step_s
    actual = ForecastView(0.0, trace.step_s, trace.actual)
    engine = Engine(batch, jobs, policy, model, trace.step_s, span, settings.capacity, actual)
    gate = None
    if settings.budget is not None:
        gate = BudgetGate(settings.budget, engine.runs, trace.start, model, actual.grid)
        engine.admission = gate
    return engine.run(), gate


def check_inside_trace(rows: list[WorkloadRow], trace: Trace, workload_path: str) -> None:
    """Every job's window must lie inside the trace: emissions outside it are unknowable."""
    for row in rows:
        job = row.job
        if job.submitted_at < trace.start:
            problem = f"job {job.id!r} is submitted before trace {trace.name} starts"
            raise InputError(workload_path, row.line, f"{problem} ({trace.start.isoformat()})")
        if job.deadline > trace.end:
            problem = f"job {job.id!r}: its window runs past the end of trace {trace.name}"
            raise InputError(
                workload_path,
                row.line,
                f"{problem} (deadline {job.deadline.isoformat()} > {trace.end.isoformat()})",
            )


def run_files(
    trace_path: str | Path, workload_path: str | Path, settings: SimulationSettings
) -> tuple[dict[str, Any], Trace, list[Job]]:
    """Load both files, check them against each other and simulate."""
    trace = load_trace(trace_path)
    rows = read_workload(workload_path)
    check_inside_trace(rows, trace, str(workload_path))
    jobs = [row.job for row in rows]
    return simulate(trace, jobs, settings), trace, jobs


def forecast_model(trace: Trace, settings: SimulationSettings) -> ForecastModel:
    """The forecast model a run with ``settings`` uses (for plots and diagnostics)."""
    return make_forecast(
        settings.forecast, trace, settings.seed, settings.horizon_h, settings.debias_h
    )
