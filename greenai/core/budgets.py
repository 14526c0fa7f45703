"""Carbon budgets per project and the arithmetic of admission, pure (no I/O, no clock).

Efficiency alone does not cap emissions (Jevons: cleaner hours invite more work); a budget
does. A ``Budget`` allows ``limit_g`` per period; periods are aligned from its stored ``start``
and roll over every ``period`` (settings and ``PUT /budgets/{project}`` give one as a
``greenai.core.settings.BudgetSpec``).

A job counts against its project's budget in the period holding its planned start, by its
estimate: ``power_kw x hours x`` the planned window's mean forecast intensity. A job whose
estimate would overrun what is left is held until the period rolls over, or rejected when it
could then no longer start by its latest start (or when its estimate alone exceeds the
budget). The ``Ledger`` admits jobs one at a time, so the admitted estimates plus what was
already used never exceed a period's budget. The daemon (``greenai.scheduling.admission``) and
the simulator (``greenai.simulate.budget``) both admit through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from greenai.core.domain import Action

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


# A job whose emissions cannot be estimated yet (no intensity known) is looked at again then.
UNKNOWN_RETRY = timedelta(minutes=5)


def estimate_g(power_kw: float, seconds: float, intensity: float) -> float:
    """Grams of CO2e of ``power_kw`` drawn for ``seconds`` at ``intensity`` gCO2e/kWh."""
    return power_kw * seconds / 3600.0 * intensity


def kg(grams: float) -> str:
    return f"{grams / 1000.0:.3f} kg"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A job asking for admission: where its plan puts it and what it would emit there
    (``estimate_g`` ``None``: no intensity known to estimate it)."""

    job_id: str
    project: str
    planned_start: datetime
    latest_start: datetime
    estimate_g: float | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A job not admitted: held (``DEFER`` until ``until``) or rejected (``REJECT``)."""

    job_id: str
    action: Action
    until: datetime | None
    reason: str


class Ledger:
    """Grams counted against each project's budget, per period (keyed by its start)."""

    def __init__(self, budgets: Mapping[str, Budget]) -> None:
        self.budgets = dict(budgets)
        self._used: dict[tuple[str, datetime], float] = {}

    def add(self, project: str, at: datetime, grams: float) -> None:
        """Count ``grams`` in the period of ``project``'s budget that holds ``at``."""
        budget = self.budgets.get(project)
        if budget is not None:
            key = (project, budget.period_at(at)[0])
            self._used[key] = self._used.get(key, 0.0) + grams

    def used_g(self, project: str, at: datetime) -> float:
        budget = self.budgets[project]
        return self._used.get((project, budget.period_at(at)[0]), 0.0)

    def periods(self, project: str) -> list[tuple[datetime, float]]:
        """``(period start, grams)`` of every period of ``project`` counted so far, in order."""
        return sorted(
            (begin, used) for (name, begin), used in self._used.items() if name == project
        )

    def admit(self, job: Candidate, now: datetime) -> Verdict | None:
        """``None`` when ``job`` fits (then it is counted), else why it is held or rejected."""
        budget = self.budgets.get(job.project)
        if budget is None:
            return None
        if job.estimate_g is None:
            why = f"{_named(budget)}: no intensity known to estimate this job's emissions yet"
            return Verdict(job.job_id, Action.DEFER, now + UNKNOWN_RETRY, f"{why}; held")
        used = self.used_g(job.project, job.planned_start)
        over = used + job.estimate_g - budget.limit_g
        if over <= 0:
            self.add(job.project, job.planned_start, job.estimate_g)
            return None
        return _refusal(budget, job, used, over)


HELD_PREFIX = "budget of project "  # how every hold's reason begins


def is_held(reason: str) -> bool:
    """Whether a scheduled job's plan is a budget's hold, not an admission."""
    return reason.startswith(HELD_PREFIX)


def _named(budget: Budget) -> str:
    per = period_text(budget.period)
    return f"{HELD_PREFIX}{budget.project} ({kg(budget.limit_g)} per {per})"


def _refusal(budget: Budget, job: Candidate, used: float, over: float) -> Verdict:
    begin, end = budget.period_at(job.planned_start)
    estimate = job.estimate_g or 0.0
    overrun = (
        f"{_named(budget)}: {kg(used)} used in the period from {_iso(begin)}; this job's "
        f"estimate of {kg(estimate)} would overrun it by {kg(over)}"
    )
    if estimate > budget.limit_g:
        why = f"{overrun}; its estimate alone exceeds a whole period's budget: rejected"
        return Verdict(job.job_id, Action.REJECT, None, why)
    if end > job.latest_start:
        why = (
            f"{overrun}; the period rolls over at {_iso(end)}, after its latest start "
            f"{_iso(job.latest_start)}: rejected"
        )
        return Verdict(job.job_id, Action.REJECT, None, why)
    why = f"{overrun}; held until the period rolls over at {_iso(end)}"
    return Verdict(job.job_id, Action.DEFER, end, why)


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
