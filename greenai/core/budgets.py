"""A project's carbon budget as the daemon stores it (``Budget``); settings and
``PUT /budgets/{project}`` give it as a ``greenai.core.settings.BudgetSpec``.

Efficiency alone does not cap emissions (Jevons: cleaner hours invite more work); a budget
does. Periods are aligned from the budget's stored ``start`` and roll over every ``period``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_PERIOD = timedelta(days=366)  # "within a year", leap years included


@dataclass(frozen=True, slots=True)
class Budget:
    """At most ``limit_g`` grams of CO2e per ``period`` for the jobs labelled ``project``."""

    project: str
    limit_g: float
    period: timedelta
    start: datetime  # periods are [start + k * period, start + (k + 1) * period)

    def period_at(self, at: datetime) -> tuple[datetime, datetime]:
        """The period holding ``at``: ``(begin, end)``."""
        begin = self.start + ((at - self.start) // self.period) * self.period
        return begin, begin + self.period


def period_text(period: timedelta) -> str:
    """``7d``, ``12h``, ``90m``, ``45s``: the largest unit that divides the period."""
    seconds = period.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
