"""Seeded GPU-cluster workloads for the fleet study (issue 10): a given average utilisation of
a given number of GPUs, a share of flexible jobs with a fixed slack, the rest rigid.

Jobs ask for 1, 2, 4 or 8 GPUs (weights 8:4:2:1 by count) and run 15 min to 12 h (log-normal,
median 90 min), drawing 0.7 kW per GPU (an H100's board power). Arrivals follow a daily cycle
(twice as many at 14:00 UTC as at 02:00), so rigid demand has an hour-of-day shape to learn.
The arrival count is set so that the mean GPUs asked for equal ``utilisation * gpus``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from greenai.core.domain import Job

KW_PER_GPU = 0.7
GPU_CHOICES, GPU_WEIGHTS = np.array([1, 2, 4, 8]), np.array([8, 4, 2, 1]) / 15
RIGID_SLA_MIN = 30.0  # a rigid job's queueing allowance (max_delay_min)


def cluster_jobs(
    start: datetime,
    days: float,
    *,
    gpus: int = 1000,
    utilisation: float = 0.75,
    flexible_share: float = 0.3,
    slack_h: float = 8.0,
    seed: int = 0,
) -> list[Job]:
    """Jobs submitted in ``[start, start + days)``, in submit order."""
    rng = np.random.default_rng(seed)
    sizes, minutes = _shapes(rng, 200_000)
    mean_gpu_h = float((sizes * minutes).mean()) / 60
    count = round(utilisation * gpus * days * 24 / mean_gpu_h)
    submits = np.sort(_cycle_minutes(rng, count, days))
    sizes, minutes = _shapes(rng, count)
    flexible = rng.random(count) < flexible_share
    jobs = []
    for k in range(count):
        submit = start + timedelta(minutes=float(submits[k]))
        duration = timedelta(minutes=float(minutes[k]))
        delay = timedelta(hours=slack_h) if flexible[k] else timedelta(minutes=RIGID_SLA_MIN)
        jobs.append(Job(
            f"c{k}", submit, duration, submit + duration + delay, name=f"c{k}",
            power_kw=KW_PER_GPU * int(sizes[k]), gpus=int(sizes[k]), flexible=bool(flexible[k]),
        ))  # fmt: skip
    return jobs


def _shapes(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    sizes = rng.choice(GPU_CHOICES, count, p=GPU_WEIGHTS)
    minutes = np.clip(np.round(rng.lognormal(np.log(90), 1.0, count)), 15, 12 * 60)
    return sizes, minutes


def _cycle_minutes(rng: np.random.Generator, count: int, days: float) -> np.ndarray:
    """Arrival minutes with rate proportional to ``1 + sin`` peaking at 14:00 UTC (3:1 range
    from peak to trough), by rejection sampling."""
    out = np.empty(0)
    while out.size < count:
        draws = rng.uniform(0, days * 24 * 60, 2 * count)
        hours = (draws / 60) % 24
        rate = 1 + 0.5 * np.sin(2 * np.pi * (hours - 8) / 24)
        out = np.concatenate((out, draws[rng.uniform(0, 1.5, draws.size) < rate]))
    return np.floor(out[:count])
