"""``now``: every job starts at submit. The baseline every saving is measured against."""

from __future__ import annotations

import numpy as np

from greenai.policies.base import BatchPlan, Capacity, JobBatch, Policy
from greenai.policies.registry import register
from greenai.policies.view import ForecastView


@register
class Now(Policy):
    name = "now"
    summary = "start every job at submit: the carbon-blind default, and the baseline"
    rank = 0
    commits = True

    def plan(self, jobs: JobBatch, view: ForecastView, now: float, capacity: Capacity) -> BatchPlan:
        count = len(jobs)
        starts = np.maximum(jobs.submit, now)
        return BatchPlan(starts, np.full(count, np.nan), ["starts at submit"] * count)
