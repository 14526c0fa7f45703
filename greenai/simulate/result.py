"""Exact accounting of a simulation and the result JSON of docs/formats.md §3, keys in order.

Emissions are charged on the trace's actual intensity, interval by interval, with the prefix
integrals of ``Grid``: partial steps and mid-step starts are exact, not sampled.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

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
    """Finished after the deadline, never finished, or ran past the end of the trace."""
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
        "rejected": 0,
        "mean_delay_min": round(totals["delay"] / delays, 3) if delays else 0.0,
        "jobs_detail": details,
    }


def _stamp(origin: datetime, seconds: float) -> str | None:
    """Whole seconds when the float is one (it nearly always is); milliseconds otherwise."""
    nearest = round(seconds)
    exact = abs(seconds - nearest) < 1e-3
    return format_time(origin + timedelta(seconds=nearest if exact else round(seconds, 3)))
