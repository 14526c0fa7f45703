"""The flow behind `greenai run`: wait for a green time, run the command measured, account.

Everything with a side effect is injected (the intensity source, clock, meter, evidence sinks),
so tests drive the whole flow with a frozen clock and fakes, and the CLI stays a thin edge.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from greenai.core.domain import Action, Decision, EnergyReading, Forecast, RunRecord
from greenai.core.errors import ExecutorError, NoSignalError, ProviderError
from greenai.core.time import Clock
from greenai.meters.base import Meter
from greenai.oneshot.child import Finished, describe_command, start_child, wait_forwarding_signals
from greenai.policies.oneshot import Request, decide, next_check

log = logging.getLogger(__name__)


class IntensitySource(Protocol):
    """The fallback chain as the one-shot flow uses it."""

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast: ...

    def history(self, start: datetime, end: datetime) -> Forecast: ...


class Accountant(Protocol):
    """Turns a measured run and the intensity seen around it into an evidence record."""

    def __call__(self, run: CompletedRun, history: Forecast | None) -> RunRecord: ...


@dataclass
class OneShotDeps:
    """The seams of one `greenai run`."""

    source: IntensitySource | None
    clock: Clock
    meter: Meter
    record_decision: Callable[[Decision], None]
    record_run: Callable[[RunRecord], None]
    account: Accountant
    on_defer: Callable[[Decision, timedelta, datetime], None] = lambda d, left, now: None
    horizon: timedelta = timedelta(hours=48)
    require_signal: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_reason: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CompletedRun:
    """A command that ran, with what measured it and the decision that started it."""

    run_id: str
    request: Request
    decision: Decision
    command: str
    job_name: str
    host: str
    started_at: datetime
    finished_at: datetime
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
            raise NoSignalError(exc.source, str(exc)) from exc
        log.warning("no intensity signal: %s", exc)
        return None
    if forecast.static and deps.require_signal:
        raise NoSignalError(forecast.source, "only a static annual average answered")
    return forecast


def wait_for_start(request: Request, deps: OneShotDeps) -> tuple[Decision, Forecast | None]:
    """Decide, log, wait, repeat, until the policy says start or the wait is cancelled.

    Returns the final decision: ``start``, or ``expire`` when a signal cancelled the wait.
    """
    while True:
        now = deps.clock.now()
        forecast = fetch_forecast(deps, now)
        decision = decide(request, forecast, now)
        deps.record_decision(decision)
        if decision.action is Action.START:
            return decision, forecast
        wait = next_check(request, now, decision.planned_start)
        deps.on_defer(decision, request.latest_start - now, now)
        if deps.clock.wait(wait.total_seconds(), deps.cancel):
            return _cancelled(request, deps, decision), forecast


def _cancelled(request: Request, deps: OneShotDeps, last: Decision) -> Decision:
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
    env: dict[str, str] | None,
    request: Request,
    decision: Decision,
    forecast: Forecast | None,
    deps: OneShotDeps,
    job_name: str | None = None,
) -> CompletedRun:
    """Start the command under the meter, wait (forwarding signals), and stop the meter."""
    token = deps.meter.start()
    started_at = deps.clock.now()
    try:
        child = start_child(argv, shell=shell, env=env)
    except ExecutorError:
        deps.meter.stop(token)
        raise
    log.info("job %s started (pid %d)", request.job_id, child.pid)
    try:
        finished = wait_forwarding_signals(child)
    finally:
        finished_at = deps.clock.now()
        energy = deps.meter.stop(token)
    log.info("job %s finished with exit code %d", request.job_id, finished.exit_code)
    command = describe_command(argv, shell)
    return CompletedRun(
        run_id=uuid.uuid4().hex,
        request=request,
        decision=decision,
        command=command,
        job_name=job_name or _default_job_name(argv),
        host=socket.gethostname(),
        started_at=started_at,
        finished_at=finished_at,
        finished=finished,
        energy=energy,
        last_forecast=forecast,
    )


def _default_job_name(argv: Sequence[str]) -> str:
    first = argv[0].split()[0] if argv else "job"
    return first.rsplit("/", 1)[-1]


def intensity_history(deps: OneShotDeps, run: CompletedRun) -> Forecast | None:
    """What the grid really was from submit to finish: the run and its counterfactual."""
    if deps.source is None:
        return run.last_forecast
    end = max(run.finished_at, run.request.submitted_at + timedelta(seconds=1))
    try:
        return deps.source.history(run.request.submitted_at, end)
    except ProviderError as exc:
        log.warning("no intensity history for the run (%s); using the last forecast", exc)
        return run.last_forecast


def record_run(deps: OneShotDeps, run: CompletedRun) -> RunRecord:
    """Account for a finished run and append its evidence row."""
    record = deps.account(run, intensity_history(deps, run))
    deps.record_run(record)
    return record
