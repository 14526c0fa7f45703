"""Builders for policy tests: jobs as seconds on an axis that starts at ``ORIGIN``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from greenai.policies.base import UNLIMITED, BatchPlan, Capacity, JobBatch
from greenai.policies.registry import get_policy
from greenai.policies.view import ForecastView

H = 3600.0
ORIGIN = datetime(2023, 1, 1, tzinfo=UTC)


def view(
    values: Sequence[float],
    origin: float = 0.0,
    fill: float | None = None,
    spread: Sequence[float] | None = None,
    signal_sd: float | None = None,
    step: float = H,
) -> ForecastView:
    errors = None if spread is None else np.asarray(spread, dtype=float)
    return ForecastView(origin, step, np.asarray(values, dtype=float), fill, errors, signal_sd)


def job(
    submit: float,
    duration: float,
    slack: float,
    *,
    interruptible: bool = False,
    threshold: float | None = None,
    remaining: float | None = None,
) -> dict[str, object]:
    """One job: it may run anywhere in ``[submit, submit + slack + duration]``."""
    return {
        "submit": submit,
        "duration": duration,
        "deadline": submit + slack + duration,
        "interruptible": interruptible,
        "threshold": threshold,
        "remaining": duration if remaining is None else remaining,
    }


def batch(*jobs: dict[str, object]) -> JobBatch:
    def at(seconds: object) -> datetime:
        return ORIGIN + timedelta(seconds=float(seconds))  # type: ignore[arg-type]

    return JobBatch.columns(
        ORIGIN,
        ids=[f"j{i}" for i in range(len(jobs))],
        submitted_at=[at(j["submit"]) for j in jobs],
        deadline_at=[at(j["deadline"]) for j in jobs],
        duration_s=[float(j["duration"]) for j in jobs],  # type: ignore[arg-type]
        interruptible=[bool(j["interruptible"]) for j in jobs],
        threshold=[j["threshold"] for j in jobs],  # type: ignore[misc]
        remaining_s=[float(j["remaining"]) for j in jobs],  # type: ignore[arg-type]
    )


def plan(
    name: str,
    jobs: Sequence[dict[str, object]],
    seen: ForecastView,
    now: float,
    capacity: Capacity = UNLIMITED,
) -> BatchPlan:
    return get_policy(name).plan(batch(*jobs), seen, now, capacity)


def one(name: str, single: dict[str, object], seen: ForecastView, now: float) -> BatchPlan:
    """The plan of a batch of one job."""
    return plan(name, [single], seen, now)
