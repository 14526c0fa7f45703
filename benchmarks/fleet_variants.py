"""Variants of ``fleet`` scored against the LP bound on one instance (issue 10): the greedy
order, the rigid reserve's forecast, the cell length and the cell prices.

    .venv/bin/python benchmarks/fleet_variants.py --trace GB --day 60            # tuning
    .venv/bin/python benchmarks/fleet_variants.py --trace ERCOT --day 180        # held out

A 1,000-GPU cluster at 75%, 30% flexible with 8 h slack, 5 days (the first 2 a warm-up whose
jobs are not counted in the violations); the share of the LP bound's savings over ``now``
with the capacity covers the whole instance.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_lp import lp_bound
from fleet_study import DATA, GPUS, TRACES
from fleet_workloads import cluster_jobs

from greenai.formats.traces import load_trace
from greenai.policies.fleet import Fleet, FleetSettings
from greenai.simulate import SimulationSettings, simulate

VARIANTS = {
    "deadline; prices + last day (default)": FleetSettings(),
    "deadline; no prices (the default before)": FleetSettings(price_rounds=0),
    "regret": FleetSettings(order="regret", price_rounds=0),
    "saving": FleetSettings(order="saving", price_rounds=0),
    "deadline; reserve lent": FleetSettings(protect_reserve=False, price_rounds=0),
    "deadline; reserve = mean": FleetSettings(reserve_quantile=None, price_rounds=0),
    "deadline; no margin": FleetSettings(margin_minutes=0.0, price_rounds=0),
    "deadline; prices 30x1 queue only": FleetSettings(price_rounds=30, expect_arrivals=False),
    "deadline; prices 30x0.3 queue only": FleetSettings(
        price_rounds=30, price_step=0.3, expect_arrivals=False
    ),
    "deadline; prices + last day; 10-min cells": FleetSettings(price_rounds=30, cell_minutes=10),
    "deadline; prices + last day; 5-min cells": FleetSettings(price_rounds=30, cell_minutes=5),
    "deadline; prices + last day; reserve = mean": FleetSettings(
        price_rounds=30, reserve_quantile=None
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trace", default="GB", choices=sorted(TRACES))
    parser.add_argument("--day", type=int, default=60)
    parser.add_argument("--utilisation", type=float, default=0.75)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    trace = load_trace(DATA / TRACES[args.trace])
    start = trace.start + timedelta(days=args.day)
    jobs = cluster_jobs(start, 5, gpus=GPUS, utilisation=args.utilisation)
    counted = {j.id for j in jobs if j.submitted_at >= start + timedelta(days=2)}
    rigid = {j.id for j in jobs if not j.flexible}
    bound = lp_bound(trace, jobs, GPUS)
    now = simulate(trace, jobs, SimulationSettings("now", capacity=GPUS))["emissions_kg"]
    print(f"{args.trace} day {args.day}, {len(jobs)} jobs: LP bound saves "
          f"{100 * (1 - bound.emissions_kg / now):.2f}% ({bound.seconds:.0f} s)")  # fmt: skip
    print("| variant | savings % | share of LP savings % | late rigid / flexible | s |")
    print("|---|---:|---:|---:|---:|")
    for name in args.variants.split(","):
        began = time.perf_counter()
        settings = SimulationSettings("fleet", capacity=GPUS)
        result = simulate(trace, jobs, settings, Fleet(VARIANTS[name]))
        late = [d["id"] for d in result["jobs_detail"] if d["late"] and d["id"] in counted]
        late_rigid = sum(1 for i in late if i in rigid)
        share = 100 * (now - result["emissions_kg"]) / (now - bound.emissions_kg)
        print(f"| {name} | {100 * (1 - result['emissions_kg'] / now):.2f} | {share:.0f} | "
              f"{late_rigid} / {len(late) - late_rigid} | "
              f"{time.perf_counter() - began:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
