"""The flow behind `greenai run`: wait for a green time, run the command measured, account.

The one job is decided at every check by the policies and the decision builder the daemon uses
(``greenai.policies.planning.decide``), and its run is accounted by the same function
(``greenai.evidence.account_run``). Everything with a side effect is injected (the intensity
source, clock, meter, evidence sinks), so tests drive the whole flow with a frozen clock and
fakes, and the CLI stays a thin edge.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from greenai.core.domain import (
    Action,
    Decision,
    EnergyReading,
    Forecast,
    Job,
    RunRecord,
    Signal,
)
from greenai.core.errors import ExecutorError, NoSignalError, ProviderError
from greenai.core.settings import Settings
from greenai.core.time import Clock
from greenai.evidence.decisions import with_meter_notes
from greenai.evidence.records import FinishedRun, account_run, intensity_history
from greenai.meters.base import Meter
from greenai.meters.gpu_share import JobProcesses
from greenai.oneshot.child import Finished, describe_command, start_child, wait_forwarding_signals
from greenai.policies.base import JobBatch, Policy
from greenai.policies.planning import axis_origin, decide
from greenai.providers.base import IntensitySource

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OneShot:
    """What `greenai run` was asked: the job, the policy it waits with, and how often it
    looks again while it waits."""

    job: Job
    policy: Policy
    check_interval: timedelta = timedelta(minutes=5)


@dataclass
class OneShotDeps:
    """The seams of one `greenai run`."""

    source: IntensitySource | None
    clock: Clock
    meter: Meter
    settings: Settings
    record_decision: Callable[[Decision], None]
    record_run: Callable[[RunRecord], None]
    on_defer: Callable[[Decision, timedelta, datetime], None] = lambda d, left, now: None
    horizon: timedelta = timedelta(hours=48)
    require_signal: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_reason: list[str] = field(default_factory=list)
    job_processes: JobProcesses | None = None  # told the command's group, for GPU sharing
    meter_notes: tuple[str, ...] = ()  # known before the run: the start decision's warnings


@dataclass(frozen=True, slots=True)
class CompletedRun:
    """A command that ran, with what measured it and the decision that started it."""

    run_id: str
    oneshot: OneShot
    decision: Decision
    command: str
    host: str
    finished: Finished
    energy: EnergyReading
    last_forecast: Forecast | None


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def fetch_forecast(deps: OneShotDeps, now: datetime) -> Forecast | None:
    """The forecast to decide on, or ``None`` when no source answered (and that is allowed)."""
    if deps.source is None:
        if deps.require_signal:
            raise NoSignalError("greenai", "no intensity provider configured")
        return None
    try:
        forecast = deps.source.forecast(now, deps.horizon)
    except ProviderError as exc:
        if deps.require_signal:
            raise NoSignalError(exc.source, exc.detail) from exc
        log.warning("no intensity signal: %s", exc)
        return None
    if forecast.static and deps.require_signal:
        raise NoSignalError(forecast.source, "only a static annual average answered")
    return forecast


def decide_now(
    oneshot: OneShot, forecast: Forecast | None, now: datetime, signal: Signal | None = None
) -> Decision:
    """The decision for the job at ``now`` given what the sources said (``None``: nothing).
    ``signal``: the one the job's threshold is in (``threshold_signal``); a forecast in the
    other is no usable figure: the job is decided as with no forecast, and the reason says
    why (a threshold of 150 g/kWh average says nothing of a 150 g/kWh MOER)."""
    mismatch = signal_mismatch(oneshot.job, forecast, signal)
    if mismatch is None:
        batch = JobBatch.of([oneshot.job], axis_origin(forecast, now))
        return decide(oneshot.policy, batch, forecast, now)[0]
    assert forecast is not None
    blind = decide(oneshot.policy, JobBatch.of([oneshot.job], now), None, now)[0]
    return replace(blind, reason=f"{mismatch}; {blind.reason}", warnings=forecast.warnings)


def threshold_signal(source: IntensitySource | None) -> Signal | None:
    """The signal a threshold is stated in: that of the first configured source (a fallback
    chain's ``primary_signal``); ``None`` when the source does not say."""
    signal = getattr(source, "primary_signal", None)
    return signal if isinstance(signal, Signal) else None


def signal_mismatch(job: Job, forecast: Forecast | None, signal: Signal | None) -> str | None:
    """Why ``forecast`` cannot be held against the job's threshold, ``None`` when it can."""
    if job.threshold is None or forecast is None or signal is None or forecast.signal is signal:
        return None
    return (
        f"{forecast.source} answered in {forecast.signal.value} values and the threshold "
        f"{job.threshold:g} g/kWh is {signal.value}: not compared, no usable figure"
    )


def decide_on_source(oneshot: OneShot, deps: OneShotDeps, now: datetime) -> Decision:
    """Ask the source and decide, as ``greenai run --dry-run`` and ``should_run`` do; with
    ``require_signal``, a figure of the other signal is no signal (``NoSignalError``)."""
    decision, _ = _decide_fresh(oneshot, deps, now)
    return decision


def _decide_fresh(
    oneshot: OneShot, deps: OneShotDeps, now: datetime
) -> tuple[Decision, Forecast | None]:
    forecast = fetch_forecast(deps, now)
    signal = threshold_signal(deps.source)
    mismatch = signal_mismatch(oneshot.job, forecast, signal)
    if mismatch is not None and deps.require_signal:
        assert forecast is not None
        raise NoSignalError(forecast.source, mismatch)
    return decide_now(oneshot, forecast, now, signal), forecast


def next_check(oneshot: OneShot, now: datetime, planned_start: datetime | None) -> timedelta:
    """How long a deferred job waits before it is decided again: the check interval, cut short
    by the planned start and the latest start, and never under a second."""
    wait = min(oneshot.check_interval, oneshot.job.latest_start - now)
    if planned_start is not None and planned_start > now:
        wait = min(wait, planned_start - now)
    return max(wait, timedelta(seconds=1))


def wait_for_start(oneshot: OneShot, deps: OneShotDeps) -> tuple[Decision, Forecast | None]:
    """Decide, log, wait, repeat, until the policy says start or the wait is cancelled.

    A policy that ``commits`` is decided once; its planned start is then kept. Returns the
    final decision: ``start``, or ``expire`` when a signal cancelled the wait.
    """
    kept: Decision | None = None
    while True:
        now = deps.clock.now()
        fresh, forecast = _decide_fresh(oneshot, deps, now)
        if kept is not None and kept.planned_start is not None and kept.planned_start <= now:
            reason = f"planned start reached ({kept.reason})"
            decision = replace(kept, at=now, action=Action.START, reason=reason)
        else:
            decision = kept or fresh
        if decision.action is Action.START:
            decision = with_meter_notes(decision, deps.meter_notes)
            deps.record_decision(decision)
            return decision, forecast
        wait = next_check(oneshot, now, decision.planned_start)
        shown = replace(
            decision, at=now, reason=f"{decision.reason}; next check in {_seconds(wait)} s"
        )
        deps.record_decision(shown)
        kept = decision if oneshot.policy.commits else None
        deps.on_defer(shown, oneshot.job.latest_start - now, now)
        if deps.clock.wait(wait.total_seconds(), deps.cancel):
            return _cancelled(deps, shown), forecast


def _cancelled(deps: OneShotDeps, last: Decision) -> Decision:
    why = deps.cancel_reason[0] if deps.cancel_reason else "cancelled"
    decision = replace(
        last,
        at=deps.clock.now(),
        action=Action.EXPIRE,
        reason=f"{why} while deferring: the command was not started",
        forecast_intensity=None,
    )
    deps.record_decision(decision)
    return decision


def run_measured(
    argv: Sequence[str],
    *,
    shell: bool,
    oneshot: OneShot,
    decision: Decision,
    forecast: Forecast | None,
    deps: OneShotDeps,
) -> CompletedRun:
    """Start the command under the meter, wait (forwarding signals; stopping it after the
    job's ``max_runtime`` with the ``grace_seconds`` setting), and stop the meter."""
    token = deps.meter.start()
    try:
        child = start_child(argv, shell=shell)
    except ExecutorError:
        deps.meter.stop(token)
        raise
    log.info("job %s started (pid %d)", oneshot.job.id, child.pid)
    if deps.job_processes is not None:
        deps.job_processes.pgid = child.pid  # start_child made it a process group's leader
    try:
        finished = wait_forwarding_signals(
            child, oneshot.job.max_runtime, deps.settings.grace_seconds
        )
    finally:
        energy = deps.meter.stop(token)
    for note in energy.notes:
        log.warning("job %s: energy (%s): %s", oneshot.job.id, energy.meter, note)
    log.info("job %s finished with exit code %d", oneshot.job.id, finished.exit_code)
    return CompletedRun(
        run_id=uuid.uuid4().hex,
        oneshot=oneshot,
        decision=decision,
        command=describe_command(argv, shell),
        host=socket.gethostname(),
        finished=finished,
        energy=energy,
        last_forecast=forecast,
    )


def record_run(deps: OneShotDeps, run: CompletedRun) -> RunRecord:
    """Account for a finished run (the daemon's way) and append its evidence row."""
    job = run.oneshot.job
    finished = FinishedRun(
        run.run_id, job, run.decision, run.energy, run.finished.exit_code, run.host, run.command
    )
    history = intensity_history(deps.source, job, run.energy.finished_at, run.last_forecast)
    record = account_run(finished, history, deps.settings)
    deps.record_run(record)
    return record


def _seconds(delta: timedelta) -> int:
    return round(delta.total_seconds())
