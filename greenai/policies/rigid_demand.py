"""Rigid GPU demand by UTC hour, from the rigid jobs submitted so far: what the fleet
planner's reserve (``reserve.py``) is learned from, in ``simulate`` and in the daemon alike.

Each rigid job counts from its submit for its declared duration, as if it had started at
once: the demand, not what the queue let run. Hour ``h`` depends only on jobs submitted before
it ends, so handing out ended hours reveals nothing of the future.
"""

from __future__ import annotations

import math

import numpy as np

from greenai.policies.base import IntArray, RigidDemand
from greenai.policies.windows import FloatArray

HOUR = 3600.0


def rigid_hourly(
    submit_s: FloatArray,
    duration_s: FloatArray,
    gpus: FloatArray | IntArray,
    observed_from_s: float | None = None,
) -> RigidDemand:
    """Mean GPUs asked for in each UTC hour from the hour of ``observed_from_s`` (default: the
    first submit; hours before it were not observed, hours after it with no rigid job are 0);
    times in seconds since the epoch, entry ``i`` for rigid job ``i``. Hours not yet ended are
    included: cut with ``ended`` before a planner sees them."""
    if observed_from_s is None:
        if submit_s.size == 0:
            return RigidDemand(0, np.zeros(0))
        observed_from_s = float(submit_s.min())
    first_hour = math.floor(observed_from_s / HOUR)
    begin = submit_s - first_hour * HOUR
    end = begin + duration_s
    hours = math.ceil(float(end.max(initial=0.0)) / HOUR) + 1
    grid = np.arange(hours + 1, dtype=np.float64) * HOUR
    weight = gpus.astype(np.float64)
    covered = _ramp_sum(begin, weight, grid) - _ramp_sum(end, weight, grid)
    return RigidDemand(first_hour, np.diff(covered) / HOUR)


def ended(demand: RigidDemand, now_s: float, eps: float = 1e-6) -> RigidDemand:
    """``demand`` as of ``now_s`` (seconds since the epoch): its hours that have ended, and
    zeros for the ended hours past its last job's end (``demand`` learned from every job
    submitted by ``now_s``: nobody asked for those hours)."""
    count = max(math.floor(now_s / HOUR + eps) - demand.first_hour, 0)
    hourly = demand.hourly[:count]
    if hourly.size < count:
        hourly = np.concatenate((hourly, np.zeros(count - hourly.size)))
    return RigidDemand(demand.first_hour, hourly)


def _ramp_sum(at: FloatArray, weight: FloatArray, grid: FloatArray) -> FloatArray:
    """``sum(weight * max(t - at, 0))`` for each ``t`` of ``grid``, by sorted prefix sums: a
    GPU box is a ramp up at its start less a ramp up at its end."""
    order = np.argsort(at)
    at, weight = at[order], weight[order]
    total = np.concatenate(([0.0], np.cumsum(weight)))
    moment = np.concatenate(([0.0], np.cumsum(weight * at)))
    k = np.searchsorted(at, grid, side="right")
    return np.asarray(grid * total[k] - moment[k], dtype=np.float64)
