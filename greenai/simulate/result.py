"""Exact accounting of a simulation and the result JSON of docs/formats.md §3, keys in order.

Emissions are charged on the trace's actual intensity, interval by interval, with the prefix
integrals of ``Grid``: partial steps and mid-step starts are exact, not sampled.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from greenai.core.time import format_time
from greenai.policies.view import EPS
from greenai.policies.windows import Grid, merge_pieces
from greenai.simulate.engine import JobRun

GRAMS_PER_KG = 1000.0
SECONDS_PER_HOUR = 3600.0


def job_emissions_kg(actual: Grid, segments: list[tuple[float, float]], power_kw: float) -> float:
    """Grams = kW x (g/kWh x s) / 3600, summed over the segments, in kg."""
    integral = sum(float(actual.integral(a, b)) for a, b in segments)
    return integral * power_kw / SECONDS_PER_HOUR / GRAMS_PER_KG


def is_late(run: JobRun, span: float) -> bool:
    """Finished after the deadline, never finished, or ran past the end of the trace; a job
    refused at admission is counted as rejected instead."""
    if run.rejected:
        return False
    if run.remaining > EPS or not run.segments:
        return True
    end = run.segments[-1][1]
    return end > run.deadline + EPS or end > span + EPS


def build_result(
    header: dict[str, Any],
    runs: list[JobRun],
    baseline: list[JobRun],
    actual: Grid,
    origin: datetime,
) -> dict[str, Any]:
    """The §3 object: ``header`` holds policy, forecast, seed and trace, in that order."""
    details = []
    totals = {"energy": 0.0, "emissions": 0.0, "baseline": 0.0, "delay": 0.0}
    delays = 0
    for run, base in zip(runs, baseline, strict=True):
        segments = merge_pieces(sorted(run.segments))
        emissions = job_emissions_kg(actual, segments, run.job.power_kw)
        base_kg = job_emissions_kg(actual, base.segments, run.job.power_kw)
        running_s = sum(b - a for a, b in segments)
        delay = (segments[0][0] - run.submit) / 60 if segments else None
        totals["energy"] += run.job.power_kw * running_s / SECONDS_PER_HOUR
        totals["emissions"] += emissions
        totals["baseline"] += base_kg
        if delay is not None:
            totals["delay"] += delay
            delays += 1
        details.append(
            {
                "id": run.job.id,
                "segments": [[_stamp(origin, a), _stamp(origin, b)] for a, b in segments],
                "emissions_kg": round(emissions, 6),
                "baseline_kg": round(base_kg, 6),
                "delay_min": None if delay is None else round(delay, 3),
                "late": is_late(run, actual.span),
            }
        )
    baseline_kg = totals["baseline"]
    savings = 100 * (1 - totals["emissions"] / baseline_kg) if baseline_kg > 0 else 0.0
    return {
        **header,
        "jobs": len(runs),
        "energy_kwh": round(totals["energy"], 6),
        "emissions_kg": round(totals["emissions"], 6),
        "baseline_emissions_kg": round(baseline_kg, 6),
        "savings_pct": round(savings, 4),
        "sla_violations": sum(1 for d in details if d["late"]),
        "rejected": sum(run.rejected for run in runs),
        "mean_delay_min": round(totals["delay"] / delays, 3) if delays else 0.0,
        **fleet_figures(details, runs),
        "jobs_detail": details,
    }


def fleet_figures(details: list[dict[str, Any]], runs: list[JobRun]) -> dict[str, Any]:
    """SLA violations of rigid and flexible jobs apart, delays' tails and the peak GPUs in use
    at once: what tells a capacity-bound plan from one that overloads the green hours."""
    rigid = [run.rigid for run in runs]
    late = [d["late"] for d in details]
    delays = [d["delay_min"] for d in details]
    rigid_delays = [d for d, r in zip(delays, rigid, strict=True) if r and d is not None]
    return {
        "sla_violations_rigid": sum(1 for x, r in zip(late, rigid, strict=True) if x and r),
        "sla_violations_flexible": sum(1 for x, r in zip(late, rigid, strict=True) if x and not r),
        "p95_delay_min": _p95([d for d in delays if d is not None]),
        "rigid_mean_delay_min": round(sum(rigid_delays) / len(rigid_delays), 3)
        if rigid_delays
        else 0.0,
        "rigid_p95_delay_min": _p95(rigid_delays),
        "peak_gpus": peak_gpus(runs),
    }


def _p95(values: list[float]) -> float:
    return round(float(np.percentile(values, 95)), 3) if values else 0.0


def peak_gpus(runs: list[JobRun]) -> int:
    """The most GPUs running at one instant (a run ending frees its GPUs for one starting
    at that same moment)."""
    changes: list[tuple[float, int]] = []
    for run in runs:
        for start, end in run.segments:
            changes += [(start, run.job.gpus), (end, -run.job.gpus)]
    changes.sort(key=lambda change: (change[0], change[1]))
    running = peak = 0
    for _, change in changes:
        running += change
        peak = max(peak, running)
    return peak


def _stamp(origin: datetime, seconds: float) -> str | None:
    """Whole seconds when the float is one (it nearly always is); milliseconds otherwise."""
    nearest = round(seconds)
    exact = abs(seconds - nearest) < 1e-3
    return format_time(origin + timedelta(seconds=nearest if exact else round(seconds, 3)))
