"""Flexible arrivals ``fleet`` expects, from the flexible jobs it has seen in the last day.

Planned from the queue alone, the first flexible jobs take the cleanest room and those that
arrive an hour later find it full and run in dirty hours, while the early ones could have run
almost as cleanly elsewhere. So the planner prices each cell by the demand it will see, and
that demand includes jobs not submitted yet: ``fleet`` expects the last day to repeat (every
flexible job seen in the 24 h before ``now``, submitted again 24 h later, with the same GPUs,
duration and slack). The expected jobs only set the prices; they are never placed.

Only jobs the policy was asked about, at or before each decision, are remembered: the
expectation is learned from the past of each decision and nothing after it. A decision earlier
than the last one, or one whose rigid-demand history starts at another hour (``origin``: both
mean a new simulation on the same policy object), forgets everything.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from greenai.policies.base import JobBatch
from greenai.policies.view import EPS

DAY_S = 86400.0


class ArrivalMemory:
    """Flexible jobs seen in the last ``days`` days, by id: epoch submit, duration, slack
    (deadline less submit) and GPUs."""

    def __init__(self, days: float = 1.0) -> None:
        self.span = days * DAY_S
        self.seen: dict[str, tuple[float, float, float, int]] = {}
        self.last = -np.inf
        self.origin: int | None = None

    def see(self, jobs: JobBatch, now: float, origin: int | None = None) -> None:
        """Remember the flexible jobs of ``jobs`` (first sight only) and forget older ones;
        ``origin`` names the history the decisions belong to (the first hour of rigid demand)."""
        base = jobs.origin.timestamp()
        at = base + now
        if at < self.last - EPS or origin != self.origin:
            self.seen.clear()
        self.last, self.origin = at, origin
        for i in np.flatnonzero(jobs.flexible).tolist():
            key = jobs.ids[i]
            if key not in self.seen:
                submit = float(jobs.submit[i])
                self.seen[key] = (base + submit, float(jobs.duration[i]),
                                  float(jobs.deadline[i]) - submit, int(jobs.gpus[i]))  # fmt: skip
        if self.seen and min(s for s, _, _, _ in self.seen.values()) < at - self.span:
            self.seen = {k: v for k, v in self.seen.items() if v[0] >= at - self.span}

    def expected(self, origin: datetime, now: float) -> JobBatch | None:
        """The flexible jobs expected after ``now``: each one seen, ``span`` later."""
        base = origin.timestamp()
        rows = [(s + self.span - base, d, slack, g) for s, d, slack, g in self.seen.values()
                if s + self.span - base > now + EPS]  # fmt: skip
        if not rows:
            return None
        submit, duration, slack, gpus = (np.asarray(c) for c in zip(*rows, strict=True))
        count = len(rows)
        return JobBatch(
            origin, [f"expected-{k}" for k in range(count)], [origin] * count,
            submit.astype(np.float64), duration.astype(np.float64),
            (submit + slack).astype(np.float64), duration.astype(np.float64),
            np.zeros(count, np.bool_), gpus.astype(np.int64), np.ones(count, np.bool_),
            np.full(count, np.nan),
        )  # fmt: skip
