"""``oracle``: the offline optimum with perfect knowledge of the actual intensity.

Exact for piecewise-constant intensity: a whole job's best start is among the breakpoints
(``Grid.best_start``), and an interruptible job's best schedule is the cheapest steps
(``Grid.cheapest_slots``). It is the yardstick every other policy's savings are shared against.
"""

from __future__ import annotations

from greenai.policies.view import JobTimes
from greenai.policies.windows import Grid


def oracle_start(job: JobTimes, actual: Grid) -> float:
    """Best start of a whole job; ``actual`` starts at time 0 of the job's axis."""
    start, _ = actual.best_start(job.submit, max(job.submit, job.latest_start), job.duration)
    return start


def oracle_pieces(job: JobTimes, actual: Grid) -> list[tuple[float, float]]:
    """Cheapest pieces of an interruptible job inside its window."""
    return actual.cheapest_slots(job.submit, job.deadline, job.duration)
