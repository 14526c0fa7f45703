"""The fleet study of issue 10 on the real 2023 traces: a 1,000-GPU cluster at 60%, 75% and 85%
average utilisation, 30% of jobs flexible with 8 h of slack, the rest rigid (30 min queueing
SLA): ``now`` and ``fleet`` held to the capacity, per-job ``window`` ignoring it, the LP bound
(``fleet_lp.py``) and what share of the jobs and what slack a 40% cut would take.

    .venv/bin/python benchmarks/fleet_study.py --days 5 --warmup 2 > study.md

Every policy plans from the past only (``perfect`` forecasts of intensity; the rigid reserve
learns from ended hours). Jobs submitted during the warm-up run but are not counted, so the
reserve has past days to learn from; the LP and its share cover the whole instance.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_lp import lp_bound
from fleet_workloads import cluster_jobs

from greenai.core.domain import Job
from greenai.core.time import parse_time
from greenai.formats.traces import Trace, load_trace
from greenai.policies.windows import Grid
from greenai.simulate import SimulationSettings, simulate

DATA = Path(__file__).resolve().parent / "data"
TRACES = {
    "GB": "gb-2023-hourly.csv",
    "PJM": "US-MIDA-PJM_2023_hourly.electricitymaps.csv",
    "NYISO": "US-NY-NYIS_2023_hourly.electricitymaps.csv",
    "ERCOT": "US-TEX-ERCO_2023_hourly.electricitymaps.csv",
    "Ontario": "CA-ON_2023_hourly.electricitymaps.csv",
}
GPUS = 1000


def measured_figures(
    result: dict[str, Any], now: dict[str, Any], jobs: list[Job], counted: set[str]
) -> dict[str, float]:
    """Savings against ``now`` with the capacity, SLA violations and delays of the counted jobs."""
    rigid = {job.id for job in jobs if not job.flexible}
    base = {d["id"]: d["emissions_kg"] for d in now["jobs_detail"]}
    rows = [d for d in result["jobs_detail"] if d["id"] in counted]
    emitted = sum(d["emissions_kg"] for d in rows)
    baseline = sum(base[d["id"]] for d in rows)
    rigid_delays = [d["delay_min"] or 0.0 for d in rows if d["id"] in rigid]
    flexible_delays = [d["delay_min"] or 0.0 for d in rows if d["id"] not in rigid]
    return {
        "savings": 100 * (1 - emitted / baseline),
        "late_rigid": sum(1 for d in rows if d["late"] and d["id"] in rigid),
        "late_flexible": sum(1 for d in rows if d["late"] and d["id"] not in rigid),
        "rigid_p95": float(np.percentile(rigid_delays, 95)),
        "flexible_mean": float(np.mean(flexible_delays)),
        "peak": float(result["peak_gpus"]),
    }


def overload(result: dict[str, Any], jobs: list[Job]) -> tuple[float, float]:
    """GPU-hours run above the capacity and hours with any excess (one-minute sampling)."""
    gpus = {job.id: job.gpus for job in jobs}
    origin = min(job.submitted_at for job in jobs)
    minutes = int((max(job.deadline for job in jobs) - origin).total_seconds() // 60) + 1
    load = np.zeros(minutes + 1)
    for detail in result["jobs_detail"]:
        for a, b in detail["segments"]:
            first = int((parse_time(a) - origin).total_seconds() // 60)
            last = int((parse_time(b) - origin).total_seconds() // 60)
            load[first] += gpus[detail["id"]]
            load[last] -= gpus[detail["id"]]
    excess = np.maximum(np.cumsum(load) - GPUS, 0.0)
    return float(excess.sum() / 60), float((excess > 0).sum() / 60)


def oracle_savings_by_slack(trace: Trace, jobs: list[Job], slacks_h: list[float]) -> list[float]:
    """Savings (%) if *every* job could wait ``slack`` hours and took its best window, capacity
    ignored: an upper bound; with a share F flexible, about F times as much."""
    grid = Grid(trace.actual, trace.step_s)
    submits = np.asarray([(j.submitted_at - trace.start).total_seconds() for j in jobs])
    lengths = np.asarray([j.duration.total_seconds() for j in jobs])
    power = np.asarray([j.power_kw for j in jobs])
    at_submit = float((grid.integral(submits, submits + lengths) * power).sum())
    out = []
    for slack in slacks_h:
        best = np.zeros(len(jobs))
        for length in np.unique(lengths).tolist():
            members = np.flatnonzero(lengths == length)
            for i in members.tolist():  # each job has its own lo: the one-job search
                _, mean = grid.best_start(submits[i], submits[i] + slack * 3600, length)
                best[i] = mean * length * power[i]
        out.append(100 * (1 - float(best.sum()) / at_submit))
    return out


def study_case(
    label: str, trace: Trace, day: int, days: float, warmup: float, utilisation: float
) -> str:
    start = trace.start + timedelta(days=day)
    jobs = cluster_jobs(start, warmup + days, gpus=GPUS, utilisation=utilisation, seed=day)
    counted = {j.id for j in jobs if j.submitted_at >= start + timedelta(days=warmup)}
    runs = {
        "now": SimulationSettings("now", capacity=GPUS),
        "window": SimulationSettings("window"),
        "fleet": SimulationSettings("fleet", capacity=GPUS),
    }
    results = {name: simulate(trace, jobs, settings) for name, settings in runs.items()}
    bound = lp_bound(trace, jobs, GPUS)
    whole_now = results["now"]["emissions_kg"]
    lp_savings = 100 * (1 - bound.emissions_kg / whole_now)
    fleet_share = (
        100 * (whole_now - results["fleet"]["emissions_kg"]) / (whole_now - bound.emissions_kg)
    )
    excess_gpu_h, excess_h = overload(results["window"], jobs)
    rows = []
    for name, result in results.items():
        f = measured_figures(result, results["now"], jobs, counted)
        extra = f" ({excess_gpu_h:.0f} GPU-h over in {excess_h:.1f} h)" if name == "window" else ""
        rows.append(
            f"| {label} | {utilisation:.0%} | {name} | "
            f"{f['savings']:.2f} | {f['late_rigid']:.0f} / {f['late_flexible']:.0f} | "
            f"{f['peak']:.0f}{extra} | {f['rigid_p95']:.0f} | {f['flexible_mean']:.0f} |"
        )
    rows.append(
        f"| | | LP bound | {lp_savings:.2f} (whole instance; fleet captures "
        f"**{fleet_share:.0f}%**) | | | | |"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--day", type=int, default=59, help="first day of 2023 (0 = 1 Jan)")
    parser.add_argument("--days", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--traces", default=",".join(TRACES))
    parser.add_argument("--utilisations", default="0.6,0.75,0.85")
    args = parser.parse_args()
    print("| trace | util. | policy | savings % | late rigid / flexible | peak GPUs | "
          "rigid p95 wait min | flexible mean delay min |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|")
    began = time.perf_counter()
    for name in args.traces.split(","):
        trace = load_trace(DATA / TRACES[name])
        for utilisation in (float(u) for u in args.utilisations.split(",")):
            case = study_case(name, trace, args.day, args.days, args.warmup, utilisation)
            print(case, flush=True)
    print(f"\n{time.perf_counter() - began:.0f} s in all\n")
    print_forty_percent(args.traces.split(","), args.day, args.days)


def print_forty_percent(names: list[str], day: int, days: float) -> None:
    """Can shifting 30% of the jobs by 8 h cut emissions by 40%? The best any schedule could
    do (every job in its best window, capacity ignored) answers it from above."""
    slacks = [8.0, 24.0, 48.0, 168.0]
    heads = " | ".join(f"all jobs, {s:.0f} h" for s in slacks)
    print(f"| trace | 30% of jobs, 8 h | {heads} | share needed for 40% at 8 h / 24 h / 168 h |")
    print("|---|---:|" + "---:|" * len(slacks) + "---|")
    for name in names:
        trace = load_trace(DATA / TRACES[name])
        jobs = cluster_jobs(trace.start + timedelta(days=day), days, gpus=GPUS, seed=day)
        best = oracle_savings_by_slack(trace, jobs, slacks)
        needed = " / ".join(
            f"{40 / best[k]:.0%}" if best[k] >= 40 else "impossible" for k in (0, 1, 3)
        )
        cells = " | ".join(f"{value:.1f}" for value in best)
        print(f"| {name} | {0.3 * best[0]:.1f} | {cells} | {needed} |", flush=True)


if __name__ == "__main__":
    main()
