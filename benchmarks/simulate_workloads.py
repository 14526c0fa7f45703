"""Seeded workloads for the simulation benchmarks (issue #3, cases a-d and the year-long run).

Each builder is deterministic for its seed, so ``docs/benchmarks.md`` can be reproduced from a
clean checkout: ``python benchmarks/simulate_bench.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np

from greenai.core.domain import Job
from greenai.formats.traces import Trace


def random_jobs(
    trace: Trace,
    count: int,
    minutes: tuple[int, int],
    slack_min: int,
    seed: int,
    interruptible_share: float = 0.0,
    prefix: str = "j",
) -> list[Job]:
    """``count`` jobs submitted uniformly (to the minute) so that each window fits the trace."""
    rng = np.random.default_rng(seed)
    longest = timedelta(minutes=minutes[1] + slack_min)
    last_submit_min = int((trace.end - longest - trace.start).total_seconds() // 60)
    submits = np.sort(rng.integers(0, last_submit_min, count))
    durations = rng.integers(minutes[0], minutes[1] + 1, count)
    powers = np.round(rng.uniform(1.0, 10.0, count), 2)
    flags = np.arange(count) < round(count * interruptible_share)
    rng.shuffle(flags)
    jobs = []
    for k in range(count):
        submit = trace.start + timedelta(minutes=int(submits[k]))
        duration = timedelta(minutes=int(durations[k]))
        deadline = submit + duration + timedelta(minutes=slack_min)
        jobs.append(
            Job(
                f"{prefix}{k}",
                submit,
                duration,
                deadline,
                power_kw=float(powers[k]),
                interruptible=bool(flags[k]),
            )
        )
    return jobs


def nightly_jobs(trace: Trace, hour: int = 1, minutes: int = 30, slack_h: int = 8) -> list[Job]:
    """One job per night at ``hour``:00 UTC, for every night whose window fits the trace."""
    jobs = []
    day = trace.start.replace(hour=hour, minute=0, second=0)
    duration, slack = timedelta(minutes=minutes), timedelta(hours=slack_h)
    while day + duration + slack <= trace.end:
        if day >= trace.start:
            jobs.append(Job(f"n{day:%m%d}", day, duration, day + duration + slack, power_kw=2.0))
        day += timedelta(days=1)
    return jobs


def case_a(trace: Trace) -> list[Job]:
    """(a) 400 ad-hoc jobs of 1-24 h with 24 h slack."""
    return random_jobs(trace, 400, (60, 24 * 60), 24 * 60, seed=1, prefix="a")


def case_b(trace: Trace) -> list[Job]:
    """(b) one 30-min job per night at 01:00 with 8 h slack."""
    return nightly_jobs(trace)


def case_c(trace: Trace) -> list[Job]:
    """(c) 150 jobs of 12-48 h with 72 h slack, half interruptible."""
    return random_jobs(
        trace, 150, (12 * 60, 48 * 60), 72 * 60, seed=3, interruptible_share=0.5, prefix="c"
    )


def case_d(trace: Trace) -> list[Job]:
    """(d) 400 jobs of 30-60 min with 2.5 h slack (for the CAISO 5-min MOER trace)."""
    return random_jobs(trace, 400, (30, 60), 150, seed=4, prefix="d")


def case_year(trace: Trace) -> list[Job]:
    """10,000 jobs of 15 min - 12 h with 0-24 h slack over a whole year, a quarter interruptible
    (slack is cut where it would run past the end of the trace)."""
    rng = np.random.default_rng(5)
    jobs = random_jobs(
        trace, 10_000, (15, 12 * 60), 0, seed=5, interruptible_share=0.25, prefix="y"
    )
    slack = rng.integers(0, 24 * 60 + 1, len(jobs))
    return [
        replace(job, deadline=min(trace.end, job.deadline + timedelta(minutes=int(extra))))
        for job, extra in zip(jobs, slack, strict=True)
    ]
