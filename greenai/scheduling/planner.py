"""Re-planning the daemon's queue with the policies every front-end uses.

Each pass groups the waiting jobs by the intensity source and the policy they plan with,
decides each group through ``greenai.policies.planning.decide`` (the decision builder
`greenai run` uses too), and turns the decisions that change a stored plan into store rows
whose payload is the encoded decision: the same text the decision log receives. Rigid jobs
(``flexible`` false) are planned with ``now``; interruptible jobs are planned whole when the
executor cannot pause them, and with ``interruptible`` (in pieces) when it can and they name no
policy of their own while the default does not pause.

Pure: no I/O, no clock; the caller passes ``now`` and the forecasts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from greenai.core.domain import Action, Decision, Forecast
from greenai.core.time import format_time
from greenai.evidence.decisions import encode_decision, with_meter_notes
from greenai.policies.base import UNLIMITED, Capacity, Holds, JobBatch, Policy, RigidDemand
from greenai.policies.fleet import Fleet
from greenai.policies.flexible_fraction import with_flexible_fraction
from greenai.policies.planning import Decisions, axis_origin, decide
from greenai.policies.registry import get_policy
from greenai.scheduling.pieces import PIECES_POLICY
from greenai.storage.records import PlanRows, WaitingJobs

RIGID_POLICY = "now"


@dataclass(frozen=True, slots=True)
class QueueDefaults:
    """What a job that does not choose gets: the daemon's provider, policy and threshold."""

    provider: str
    policy: str
    threshold: float | None = None
    can_pause: bool = False  # whether the executor can pause interruptible jobs
    max_flexible_fraction: float | None = None  # for the groups planned with fleet


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """The decisions of one group of waiting jobs, entry ``i`` for job ``i`` of ``jobs``.
    ``overrides`` replace the policy's decisions admission refused (carbon budgets): a
    ``defer`` holds the job, a ``reject`` ends it."""

    provider: str
    jobs: WaitingJobs
    decisions: Decisions
    overrides: dict[int, Decision] = field(default_factory=dict)
    meter_notes: Callable[[int], tuple[str, ...]] | None = None  # by GPU count, for starts

    def decision(self, index: int) -> Decision:
        decision = self.overrides.get(index) or self.decisions[index]
        if decision.action is Action.START and self.meter_notes is not None:
            return with_meter_notes(decision, self.meter_notes(self.jobs.gpus[index]))
        return decision

    def moved(self, tolerance: timedelta) -> list[int]:
        """The jobs whose stored plan this pass changes: queued or unplanned ones, and those
        whose planned start moved by more than ``tolerance`` (rejected ones are not planned)."""
        starts = list(self.decisions.planned_starts)
        for index, decision in self.overrides.items():
            starts[index] = decision.planned_start or decision.at
        rejected = self.rejected()
        rows = zip(self.jobs.states, self.jobs.planned, starts, strict=True)
        return [
            i
            for i, (state, old, new) in enumerate(rows)
            if (state == "queued" or old is None or abs(new - old) > tolerance)
            and i not in rejected
        ]

    def rejected(self) -> dict[int, Decision]:
        """The jobs admission rejects, by index."""
        return {i: d for i, d in self.overrides.items() if d.action is Action.REJECT}

    def starting(self) -> list[Decision]:
        """The decisions that start their job now."""
        chosen = (self.decision(i) for i, starts in enumerate(self.decisions.starting) if starts)
        return [decision for decision in chosen if decision.action is Action.START]

    def rows(self, indices: Sequence[int]) -> PlanRows:
        """The store rows of the decisions at ``indices``, payloads encoded once."""
        chosen = [self.decision(i) for i in indices]
        return PlanRows(
            job_ids=[d.job_id for d in chosen],
            expected=[str(self.jobs.states[i]) for i in indices],
            starts=[d.planned_start or d.at for d in chosen],
            ats=[d.at for d in chosen],
            actions=[str(d.action) for d in chosen],
            reasons=[d.reason for d in chosen],
            payloads=[encode_decision(d) for d in chosen],
        )


@dataclass(frozen=True, slots=True)
class Held:
    """Slots a running job holds until its expected end (on the daemon's clock)."""

    until: datetime
    gpus: int
    rigid: bool


@dataclass(frozen=True, slots=True)
class QueueCapacity:
    """The daemon's GPU slots as a capacity planner needs them: how many, what running jobs
    hold and until when, and the rigid demand of the hours that have ended. Each group's
    ``Capacity`` is this on the group's own time axis."""

    slots: int
    in_use: int
    held: tuple[Held, ...] = ()
    rigid_demand: RigidDemand | None = None

    def on_axis(self, origin: datetime, now: datetime) -> Capacity:
        """``Capacity`` with holds in seconds from ``origin``; slots held by runs this daemon
        does not watch (a sibling replica's) are held for an hour, their end unknown here."""
        unknown = self.in_use - sum(held.gpus for held in self.held)
        held = list(self.held)
        if unknown > 0:
            held.append(Held(now + timedelta(hours=1), unknown, rigid=True))
        at = (now - origin).total_seconds()
        holds = Holds(
            np.full(len(held), at),
            np.asarray([max((h.until - origin).total_seconds(), at) for h in held]),
            np.asarray([h.gpus for h in held], dtype=np.int64),
            np.asarray([h.rigid for h in held], dtype=np.bool_),
        )
        return Capacity(self.slots, self.in_use, holds, self.rigid_demand)


def deferrals_due(waiting: WaitingJobs, now: datetime) -> set[int]:
    """The scheduled jobs whose deferral has come due by ``now``: they start now (planned as
    rigid), whatever a fresh look at the forecast says. A tick that comes a minute after a
    clean hour began sees that hour's window end a minute into dirtier air, and deciding
    afresh pushed the job to the next clean hour, and again at that one, until its slack ran
    out. A start-now plan that waited for a slot (or was made blind, without a forecast) was
    no deferral (made at its start): it is planned afresh."""
    if not waiting.planned_at:
        return set()
    rows = zip(waiting.states, waiting.planned, waiting.planned_at, strict=True)
    return {
        i
        for i, (state, planned, planned_at) in enumerate(rows)
        if state == "scheduled"
        and planned is not None
        and planned_at is not None
        and planned_at < planned < now
    }


def plan_queue(
    waiting: WaitingJobs,
    forecast_for: Callable[[str], Forecast | None],
    now: datetime,
    defaults: QueueDefaults,
    capacity: Capacity | QueueCapacity = UNLIMITED,
    meter_notes: Callable[[int], tuple[str, ...]] | None = None,
) -> list[GroupPlan]:
    """Decide every waiting job, one group per (provider, policy). ``meter_notes`` (by a
    job's GPU count): what its meters already know they cannot measure, added to the
    warnings of the decisions that start a job now."""
    providers = [spec or defaults.provider for spec in waiting.providers]
    in_pieces = PIECES_POLICY if defaults.can_pause else defaults.policy
    if get_policy(defaults.policy, online=True).pauses:
        in_pieces = defaults.policy
    due = deferrals_due(waiting, now)
    policies = [
        (wanted or (in_pieces if interruptible else defaults.policy))
        if flexible and i not in due
        else RIGID_POLICY
        for i, (wanted, flexible, interruptible) in enumerate(
            zip(waiting.policies, waiting.flexible, waiting.interruptible, strict=True)
        )
    ]
    plans = []
    for (provider, name), group in waiting.group_by(providers, policies).items():
        forecast = forecast_for(provider)
        origin = axis_origin(forecast, now)
        batch = _batch(group, origin, defaults)
        room = capacity.on_axis(origin, now) if isinstance(capacity, QueueCapacity) else capacity
        decisions = decide(_policy(name, defaults), batch, forecast, now, room)
        plan = GroupPlan(provider, group, decisions, meter_notes=meter_notes)
        for index in deferrals_due(group, now):
            decision = decisions[index]
            if decision.action is Action.START:  # say why, not the rigid rule's words
                reached = f"planned start {format_time(group.planned[index])} reached: starts now"
                plan.overrides[index] = replace(decision, reason=reached)
        plans.append(plan)
    return plans


def _policy(name: str, defaults: QueueDefaults) -> Policy:
    """The registry's policy, with the daemon's flexible fraction where it has one."""
    policy = get_policy(name, online=True)
    if defaults.max_flexible_fraction is None or not isinstance(policy, Fleet):
        return policy
    return with_flexible_fraction(policy, defaults.max_flexible_fraction)


def _batch(jobs: WaitingJobs, origin: datetime, defaults: QueueDefaults) -> JobBatch:
    thresholds = [defaults.threshold if own is None else own for own in jobs.thresholds]
    return JobBatch.columns(
        origin,
        ids=jobs.ids,
        submitted_at=jobs.submitted,
        deadline_at=jobs.deadlines,
        duration_s=jobs.durations,
        interruptible=[flag and defaults.can_pause for flag in jobs.interruptible],
        gpus=jobs.gpus,
        flexible=jobs.flexible,
        threshold=thresholds,
    )
