"""How loose is the LP bound of ``fleet_lp.py``? The same relaxation with the capacity held per
``--cap-min`` minutes instead of per trace step, every kink of a start's cost and step shares
as a candidate start, and optionally rigid jobs free to start anywhere within their SLA.

    .venv/bin/python benchmarks/fleet_lp_check.py --trace GB --day 60 --cap-min 15
    .venv/bin/python benchmarks/fleet_lp_check.py --trace GB --day 60 --rigid sla

What it relaxes, exactly: the GPUs in use are capped on average over each ``cap`` interval
(not at every instant), and each job is a fractional mix of starts. Candidate starts are the
job's earliest and latest starts and every start where the run's begin or end crosses a trace
step or a ``cap`` boundary: between two such starts both the emissions and the per-interval
GPU shares are linear in the start, so every real start is a mix of candidates and the LP is
a relaxation of every schedule that meets the deadlines (with ``--rigid submit``: every
schedule that also starts rigid jobs at submit, as ``fleet_lp.py`` does; with ``--rigid
sla``: every schedule that starts them within their SLA). ``fleet_lp.py`` itself takes only
trace-step boundaries and the two ends as starts, so strictly it misses the kinks where a
run's end crosses a boundary; this script measures what that is worth.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, hstack, identity

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_study import DATA, GPUS, TRACES
from fleet_workloads import RIGID_SLA_MIN, cluster_jobs

from greenai.core.domain import Job
from greenai.formats.traces import Trace, load_trace
from greenai.policies.windows import Grid


def candidate_starts(submit: float, latest: float, length: float, steps: set[float]) -> np.ndarray:
    """The ends and every start where the run's begin or end crosses a boundary."""
    hi = max(submit, latest)
    points = [np.asarray([submit, hi])]
    for step in steps:
        points.append(np.arange(np.ceil(submit / step) * step, hi + 1e-6, step))
        first_end = np.ceil((submit + length) / step) * step
        points.append(np.arange(first_end, hi + length + 1e-6, step) - length)
    found = np.unique(np.round(np.concatenate(points), 3))
    return found[(found >= submit - 1e-6) & (found <= hi + 1e-6)]


def shares(start: float, length: float, cap: float, gpus: int, off: float) -> tuple[Any, Any]:
    """The ``cap`` intervals a run touches and the GPUs it holds in each on average."""
    first, last = int((start - off) // cap), int((start + length - 1e-6 - off) // cap)
    cells = np.arange(first, last + 1)
    lo = np.maximum(start, off + cells * cap)
    hi = np.minimum(start + length, off + (cells + 1) * cap)
    return cells, gpus * (hi - lo) / cap


def bound(trace: Trace, jobs: list[Job], gpus: int, cap: float, rigid: str) -> dict[str, float]:
    began = time.perf_counter()
    actual, step = Grid(trace.actual, trace.step_s), trace.step_s
    submits = [(j.submitted_at - trace.start).total_seconds() for j in jobs]
    off = np.floor(min(submits) / step) * step
    end = max((j.deadline - trace.start).total_seconds() for j in jobs) + 13 * 3600
    rows = int(np.ceil((end - off) / cap)) + 1
    load, fixed_kg, group = np.zeros(rows), 0.0, 0
    cols: list[tuple[int, float, Any, Any]] = []
    for job, submit in zip(jobs, submits, strict=True):
        length = job.duration.total_seconds()

        def kg(at: float, length: float = length, job: Job = job) -> float:
            return float(actual.integral(at, at + length)) * job.power_kw / 3600 * 1e-3

        if not job.flexible and rigid == "submit":
            cells, held = shares(submit, length, cap, job.gpus, off)
            load[cells] += held
            fixed_kg += kg(submit)
            continue
        if job.flexible:
            latest = (job.deadline - trace.start).total_seconds() - length
        else:
            latest = submit + RIGID_SLA_MIN * 60
        for at in candidate_starts(submit, latest, length, {step, cap}).tolist():
            cells, held = shares(at, length, cap, job.gpus, off)
            cols.append((group, kg(at), cells, held))
        group += 1
    count = len(cols)
    costs = np.asarray([c[1] for c in cols])
    index = np.concatenate([c[2] for c in cols])
    values = np.concatenate([c[3] for c in cols])
    owner = np.repeat(np.arange(count), [len(c[2]) for c in cols])
    usage = csr_matrix((values, (index, owner)), shape=(rows, count))
    answer = linprog(
        np.concatenate((costs, np.full(rows, 10 * costs.max()))),
        A_ub=hstack([usage, -identity(rows, format="csr")]).tocsr(),
        b_ub=np.maximum(gpus - load, 0.0),
        A_eq=csr_matrix(
            (np.ones(count), ([c[0] for c in cols], np.arange(count))), shape=(group, count + rows)
        ),
        b_eq=np.ones(group),
        bounds=(0, None),
        method="highs",
    )
    if answer.status != 0:
        raise RuntimeError(f"LP not solved: {answer.message}")
    return {
        "kg": fixed_kg + float(costs @ answer.x[:count]),
        "overflow": float(answer.x[count:].sum()),
        "columns": count,
        "seconds": time.perf_counter() - began,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trace", default="GB", choices=sorted(TRACES))
    parser.add_argument("--day", type=int, default=60)
    parser.add_argument("--utilisation", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cap-min", type=float, default=60.0)
    parser.add_argument("--rigid", default="submit", choices=["submit", "sla"])
    args = parser.parse_args()
    trace = load_trace(DATA / TRACES[args.trace])
    start = trace.start + timedelta(days=args.day)
    jobs = cluster_jobs(start, 5, gpus=GPUS, utilisation=args.utilisation, seed=args.seed)
    found = bound(trace, jobs, GPUS, args.cap_min * 60, args.rigid)
    print(f"{args.trace} day {args.day} {args.utilisation:.0%}, capacity per {args.cap_min:g} "
          f"min, rigid at {args.rigid}: {found['kg']:.1f} kg (overflow "
          f"{found['overflow']:.1f} GPU-intervals, {found['columns']} starts, "
          f"{found['seconds']:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
