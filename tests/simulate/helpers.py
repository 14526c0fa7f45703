"""Small traces and jobs built in code, so every expected number can be worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from greenai.core.domain import Job
from greenai.formats.traces import Trace

T0 = datetime(2023, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def make_trace(values: list[float], forecasts: list[list[float]] | None = None) -> Trace:
    array = None if forecasts is None else np.asarray(forecasts, dtype=float)
    return Trace("t.csv", "t.csv", T0, HOUR, np.asarray(values, dtype=float), array)


def make_job(
    job_id: str,
    submit_min: float,
    duration_min: float,
    slack_min: float,
    power_kw: float = 1.0,
    interruptible: bool = False,
    gpus: int = 1,
    flexible: bool = True,
) -> Job:
    submit = T0 + timedelta(minutes=submit_min)
    duration = timedelta(minutes=duration_min)
    deadline = submit + duration + timedelta(minutes=slack_min)
    return Job(
        job_id,
        submit,
        duration,
        deadline,
        power_kw=power_kw,
        interruptible=interruptible,
        gpus=gpus,
        flexible=flexible,
    )
