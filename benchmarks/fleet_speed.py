"""How long ``fleet`` takes to plan a big queue (issue 10): 10,000 queued jobs on 1,000 GPUs
over a 48 h horizon at 30-min steps, 500 running jobs holding slots, 14 days of rigid demand.

    .venv/bin/python benchmarks/fleet_speed.py          # prints the best and median of 5 plans

Jobs: 1, 2, 4 or 8 GPUs (weights 10:6:3:1), 30 min to 4 h, 0 to 24 h of slack, 70% flexible;
the forecast is a real 48 h of the GB 2023 trace interpolated to 30 min. Seeded.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from greenai.formats.traces import load_trace
from greenai.policies.base import Capacity, Holds, JobBatch, RigidDemand
from greenai.policies.fleet import Fleet
from greenai.policies.view import ForecastView

ROOT = Path(__file__).resolve().parents[1]
JOBS, GPUS, STEP_S, HORIZON_H = 10_000, 1_000, 1800.0, 48


def queue(rng: np.random.Generator, origin_day: int) -> tuple[JobBatch, Capacity, ForecastView]:
    trace = load_trace(ROOT / "benchmarks" / "data" / "gb-2023-hourly.csv")
    origin = trace.start + timedelta(days=origin_day)
    hourly = trace.actual[origin_day * 24 : origin_day * 24 + HORIZON_H + 1]
    values = np.interp(np.arange(2 * HORIZON_H) / 2, np.arange(hourly.size), hourly)
    view = ForecastView(0.0, STEP_S, values)
    durations = rng.integers(1, 9, JOBS) * STEP_S
    slack = rng.integers(0, 49, JOBS) * STEP_S
    submitted = -rng.integers(0, 4, JOBS) * STEP_S
    batch = JobBatch.columns(
        origin,
        ids=[f"q{i}" for i in range(JOBS)],
        submitted_at=[origin + timedelta(seconds=float(s)) for s in submitted],
        deadline_at=[
            origin + timedelta(seconds=float(end)) for end in submitted + durations + slack
        ],
        duration_s=durations,
        interruptible=[False] * JOBS,
        gpus=rng.choice([1, 2, 4, 8], JOBS, p=[0.5, 0.3, 0.15, 0.05]),
        flexible=rng.random(JOBS) < 0.7,
    )
    running = 500
    holds = Holds(
        np.zeros(running),
        rng.integers(1, 17, running) * STEP_S,
        rng.choice([1, 2], running),
        rng.random(running) < 0.7,
    )
    first_hour = int(origin.timestamp() // 3600) - 14 * 24
    demand = RigidDemand(first_hour, rng.uniform(100, 300, 14 * 24))
    return batch, Capacity(GPUS, int(holds.gpus.sum()), holds, demand), view


def main() -> None:
    batch, capacity, view = queue(np.random.default_rng(10), origin_day=60)
    policy = Fleet()
    times = []
    for _ in range(5):
        began = time.perf_counter()
        plan = policy.plan(batch, view, 0.0, capacity)
        times.append(time.perf_counter() - began)
    now = int((plan.starts <= 0).sum())
    print(f"fleet: {JOBS} queued jobs, {GPUS} GPUs, {HORIZON_H} h at 30 min: "
          f"best {min(times):.2f} s, median {statistics.median(times):.2f} s "
          f"({now} start now; {len(set(plan.reasons))} distinct reasons)")  # fmt: skip
    print(f"machine: {platform.processor() or platform.machine()}, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
