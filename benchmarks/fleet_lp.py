"""An offline reference for ``fleet`` (issue 10): a time-indexed LP relaxation with capacity,
solved by HiGHS (``scipy.optimize.linprog``; scipy is the ``bench`` extra, never a greenai
dependency), whose optimum is a lower bound on emissions.

Rigid jobs run at submit (their GPUs come off the capacity); each flexible job chooses a
fractional mix of starts: its submit, every trace step boundary up to its latest start, and
the latest start (where the mean of a window has its kinks, so no other start can be
cheaper). In every trace step the GPUs the mix holds *on average over the step* stay within
what rigid work leaves: averaging over a step and splitting jobs relax both the instant-by-
instant capacity and the whole-job starts, so no real schedule does better with these jobs,
the actual intensity and the same rigid starts. Where rigid work alone overfills a step,
flexible work there is charged as overflow (reported; 0 in the study's instances).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, hstack, identity

from greenai.core.domain import Job
from greenai.formats.traces import Trace
from greenai.policies.windows import Grid

KG_PER_G, S_PER_H = 1e-3, 3600.0


@dataclass(frozen=True)
class Bound:
    """The LP's answer: the emission bound (kg), the flexible jobs' share of it, overflow
    (GPU-steps beyond the capacity) and the solve time."""

    emissions_kg: float
    rigid_kg: float
    overflow_gpu_steps: float
    variables: int
    seconds: float


def lp_bound(trace: Trace, jobs: list[Job], gpus: int) -> Bound:
    """The lower bound on the emissions of ``jobs`` on ``gpus`` GPUs over ``trace``."""
    began = time.perf_counter()
    actual, step = Grid(trace.actual, trace.step_s), trace.step_s
    steps = trace.actual.size
    rigid_load = np.zeros(steps)
    rigid_kg = 0.0
    cols: list[tuple[int, float, list[int], list[float]]] = []  # job, kg, steps, GPU shares
    flexible = [job for job in jobs if job.flexible]
    for job in jobs:
        submit = (job.submitted_at - trace.start).total_seconds()
        length = job.duration.total_seconds()
        if not job.flexible:
            cells, shares = _overlaps(submit, length, step, job.gpus)
            rigid_load[cells] += shares
            rigid_kg += _kg(actual, submit, length, job.power_kw)
    for index, job in enumerate(flexible):
        submit = (job.submitted_at - trace.start).total_seconds()
        length = job.duration.total_seconds()
        latest = (job.deadline - trace.start).total_seconds() - length
        for start in _starts(submit, latest, step):
            cells, shares = _overlaps(start, length, step, job.gpus)
            cols.append((index, _kg(actual, start, length, job.power_kw), cells, shares))
    result = _solve(cols, len(flexible), np.maximum(gpus - rigid_load, 0.0), steps)
    flexible_kg, overflow = result
    return Bound(rigid_kg + flexible_kg, rigid_kg, overflow, len(cols),
                 time.perf_counter() - began)  # fmt: skip


def _starts(submit: float, latest: float, step: float) -> np.ndarray:
    first = np.ceil(submit / step) * step
    boundaries = np.arange(first, latest + 1e-6, step)
    return np.unique(np.concatenate(([submit, max(submit, latest)], boundaries)))


def _overlaps(start: float, length: float, step: float, gpus: int) -> tuple[list[int], list[float]]:
    """The steps a run touches and the GPUs it holds in each, on average over the step."""
    first, last = int(start // step), int((start + length - 1e-6) // step)
    cells = list(range(first, last + 1))
    shares = [gpus * (min(start + length, (c + 1) * step) - max(start, c * step)) / step
              for c in cells]  # fmt: skip
    return cells, shares


def _kg(actual: Grid, start: float, length: float, power_kw: float) -> float:
    return float(actual.integral(start, start + length)) * power_kw / S_PER_H * KG_PER_G


def _solve(
    cols: list[tuple[int, float, list[int], list[float]]], jobs: int, room: np.ndarray, steps: int
) -> tuple[float, float]:
    """min cost.x + penalty.overflow s.t. each job's mix sums to 1 and each step's GPUs stay
    within ``room`` plus overflow. Returns (the mix's kg, the overflow used)."""
    count = len(cols)
    costs = np.asarray([kg for _, kg, _, _ in cols])
    penalty = 10 * float(costs.max(initial=1.0))
    rows = [c for _, _, cells, _ in cols for c in cells]
    vals = [s for _, _, _, shares in cols for s in shares]
    owner = [i for i, (_, _, cells, _) in enumerate(cols) for _ in cells]
    usage = csr_matrix((vals, (rows, owner)), shape=(steps, count))
    a_ub = hstack([usage, -identity(steps, format="csr")]).tocsr()
    a_eq = csr_matrix(
        (np.ones(count), ([job for job, _, _, _ in cols], np.arange(count))),
        shape=(jobs, count + steps),
    )
    answer = linprog(
        np.concatenate((costs, np.full(steps, penalty))),
        A_ub=a_ub, b_ub=room, A_eq=a_eq, b_eq=np.ones(jobs),
        bounds=(0, None), method="highs",
    )  # fmt: skip
    if answer.status != 0:
        raise RuntimeError(f"LP not solved: {answer.message}")
    mix = answer.x[:count]
    return float(costs @ mix), float(answer.x[count:].sum())
