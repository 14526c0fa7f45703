"""One pass of the daemon: reap, refresh forecasts, expire, re-plan, dispatch.

``Engine.tick(now)`` never raises: each stage runs on its own, and a failing stage is logged,
counted in ``EngineStats`` and tried again on the next tick. The store is the truth about job
states (every change a compare-and-set); the engine's memory only holds what cannot be stored:
process handles, meter tokens and the forecast cache. ``reconcile`` settles jobs a dead daemon
left ``running``; ``drain`` is the SIGTERM path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from greenai.core.domain import Action, Decision, EnergyReading, Forecast, JobState, RunRecord
from greenai.core.errors import ExecutorError, GreenAIError, InvalidTransition
from greenai.core.time import Clock
from greenai.executors.base import Executor, Handle, Launch, pick_gpus
from greenai.scheduling.accounting import RunContext, account_run, run_summary
from greenai.scheduling.config import (
    EngineConfig,
    EngineStats,
    EvidenceSink,
    ForecastSource,
    Meter,
)
from greenai.scheduling.planner import plan_waiting
from greenai.storage.records import Event, JobRecord, OnDeadline
from greenai.storage.store import Store

log = logging.getLogger(__name__)

WAITING = (JobState.QUEUED, JobState.SCHEDULED)
REPLAN_TOLERANCE = timedelta(seconds=1)


@dataclass
class _Running:
    handle: Handle
    meter: Meter | None
    token: Any
    started_at: datetime
    planned_intensity: float | None


class Engine:
    """The daemon's loop body; thread-safe for one ticking thread plus API readers."""

    def __init__(
        self,
        store: Store,
        executor: Executor,
        config: EngineConfig,
        source_for: Callable[[str], ForecastSource] | None = None,
        meter_for: Callable[[tuple[int, ...]], Meter] | None = None,
        evidence: EvidenceSink | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.config = config
        self.source_for = source_for
        self.meter_for = meter_for
        self.evidence = evidence
        self.stats = EngineStats()
        self.dispatching = True
        self.forecasts: dict[str, tuple[Forecast, datetime]] = {}
        self._running: dict[str, _Running] = {}

    # -- the loop ----------------------------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """One pass; never raises."""
        for name, stage in (
            ("reap", self._reap),
            ("refresh", self._refresh),
            ("expire", self._expire),
            ("plan", self._plan),
            ("dispatch", self._dispatch),
        ):
            try:
                stage(now)
            except Exception as exc:  # one stage failing must not stop the others
                self.stats.stage_errors[name] = self.stats.stage_errors.get(name, 0) + 1
                self.stats.last_error = f"{name}: {type(exc).__name__}: {exc}"
                log.exception("tick stage %s failed; retrying next tick", name)
        self.stats.ticks += 1
        self.stats.last_tick_at = now

    @property
    def running_jobs(self) -> int:
        return len(self._running)

    def forecast(self, spec: str | None = None) -> Forecast | None:
        cached = self.forecasts.get(spec or self.config.default_provider)
        return cached[0] if cached else None

    # -- stages ------------------------------------------------------------------------------

    def _refresh(self, now: datetime) -> None:
        if self.source_for is None:
            return
        specs = {spec or self.config.default_provider for spec in self.store.waiting_providers()}
        specs.add(self.config.default_provider)
        for spec in sorted(specs):
            cached = self.forecasts.get(spec)
            if cached and now - cached[1] < self.config.refresh_every and cached[0].covers(now):
                continue
            try:
                forecast = self.source_for(spec).forecast(now, self.config.horizon)
            except GreenAIError as exc:
                self.stats.provider_errors += 1
                log.warning("forecast for %s failed, keeping the cached one: %s", spec, exc)
                continue
            if forecast.fallback:
                self.stats.fallbacks += 1
            self.forecasts[spec] = (forecast, now)

    def _waiting(self) -> list[JobRecord]:
        return self.store.jobs_in(WAITING)

    def _expire(self, now: datetime) -> None:
        for job in self._waiting():
            if job.on_deadline is OnDeadline.EXPIRE and job.deadline <= now:
                decision = Decision(
                    now,
                    job.id,
                    job.policy or self.config.policy,
                    Action.EXPIRE,
                    "deadline passed before the job could start",
                    deadline=job.deadline,
                )
                self._move(job, job.state, JobState.EXPIRED, Event.from_decision(decision))
                self._log_decision(decision)

    def _plan(self, now: datetime) -> None:
        waiting = self.store.waiting_for_plan()
        for spec, group in waiting.by_provider(self.config.default_provider).items():
            plan = plan_waiting(
                group, self.forecast(spec), now, self.config.policy, self.config.threshold
            )
            moved = plan.moved(REPLAN_TOLERANCE)
            applied = self.store.set_plans(plan.rows(moved))
            if applied:
                log.info("re-planned %d of %d waiting jobs for %s", applied, len(group), spec)
            if self.evidence is not None and moved:
                self.evidence.record_decisions([plan.decision(i) for i in moved])

    def _dispatch(self, now: datetime) -> None:
        if not self.dispatching:
            return
        due = [j for j in self.store.upcoming(limit=1000) if j.planned_start <= now]  # type: ignore[operator]
        due.sort(key=lambda job: (job.deadline - job.duration, job.planned_start))
        busy = self.store.busy_gpu_ids()
        for job in due:
            gpus = pick_gpus(self.config.gpu_slots, busy, job.gpus)
            if gpus is None:
                continue
            if self._start(job, gpus, now):
                busy.update(gpus)

    def _start(self, job: JobRecord, gpus: tuple[int, ...], now: datetime) -> bool:
        """Claim the job (compare-and-set), then start its command; ``True`` if it holds GPUs."""
        event = Event(now, "dispatch", f"started on GPUs {list(gpus)} of {self.config.host}")
        try:
            claimed = self.store.transition(
                job.id,
                JobState.SCHEDULED,
                JobState.RUNNING,
                event,
                started_at=now,
                attempts=job.attempts + 1,
                host=self.config.host,
                gpu_ids=list(gpus),
                cancel_requested=False,
                finished_at=None,
                exit_code=None,
            )
        except InvalidTransition as exc:
            log.info("job %s not started: %s", job.id, exc)
            return False
        log_path = self.config.log_dir / f"{job.id}.log"
        launch = Launch(job.id, claimed.attempts, job.command, gpus, log_path, job.cwd, job.env)
        try:
            handle = self.executor.submit(launch)
        except ExecutorError as exc:
            self._move(
                claimed,
                JobState.RUNNING,
                JobState.FAILED,
                Event(now, "fail", str(exc)),
                finished_at=now,
            )
            return False
        self.store.update_running(job.id, pid=handle.pid, log_path=str(log_path))
        meter, token = self._start_meter(gpus)
        planned = self._planned_intensity(job.id)
        self._running[job.id] = _Running(handle, meter, token, now, planned)
        return True

    def _start_meter(self, gpus: tuple[int, ...]) -> tuple[Meter | None, Any]:
        if self.meter_for is None:
            return None, None
        try:
            meter = self.meter_for(gpus)
            return meter, meter.start()
        except GreenAIError as exc:
            log.warning("no meter for GPUs %s: %s", gpus, exc)
            return None, None

    def _planned_intensity(self, job_id: str) -> float | None:
        for event in reversed(self.store.events(job_id)):
            value = event.payload.get("forecast_intensity")
            if value is not None:
                return float(value)
        return None

    def _reap(self, now: datetime) -> None:
        if not self._running:
            return
        records = {job.id: job for job in self.store.jobs_in([JobState.RUNNING])}
        for job_id, running in list(self._running.items()):
            job = records.get(job_id)
            if job is not None and job.cancel_requested:
                self._stop(running.handle)
            code = self.executor.poll(running.handle)
            if code is not None:
                del self._running[job_id]
                self._finish(job or self.store.get(job_id), running, code, now)

    def _stop(self, handle: Handle) -> None:
        if handle.cancel_sent is None:
            handle.cancel_sent = time.monotonic()
            self.executor.cancel(handle)
        elif time.monotonic() - handle.cancel_sent > self.config.cancel_grace_s:
            self.executor.cancel(handle, force=True)

    def _finish(self, job: JobRecord, running: _Running, code: int, now: datetime) -> None:
        reading = self._stop_meter(running, now)
        record = self._account(job, running, reading, code)
        if job.cancel_requested:
            new, action, why = JobState.CANCELLED, "cancel", f"stopped on request (exit {code})"
        elif code == 0:
            new, action, why = JobState.SUCCEEDED, "finish", "command exited 0"
        else:
            new, action, why = JobState.FAILED, "fail", f"command exited {code}"
        self.store.record_run(run_summary(record, running.handle.attempt))
        self._move(
            job,
            JobState.RUNNING,
            new,
            Event(now, action, why),
            finished_at=now,
            exit_code=code,
            pid=None,
        )
        if self.evidence is not None:
            self.evidence.record_run(record)

    def _stop_meter(self, running: _Running, now: datetime) -> EnergyReading:
        if running.meter is not None:
            try:
                return running.meter.stop(running.token)
            except GreenAIError as exc:
                log.warning("meter failed for job %s: %s", running.handle.job_id, exc)
        return EnergyReading(running.started_at, now, meter="none")

    def _account(
        self, job: JobRecord, running: _Running, reading: EnergyReading, code: int
    ) -> RunRecord:
        context = RunContext(
            job=job,
            exit_code=code,
            history=self._history(job, reading.finished_at),
            planned_intensity=running.planned_intensity,
            host=self.config.host,
        )
        return account_run(context, reading, self.config.settings)

    def _history(self, job: JobRecord, end: datetime) -> Forecast | None:
        """Intensity over the job's life (actuals where the source has them), else the
        cached forecast."""
        spec = job.provider or self.config.default_provider
        if self.source_for is not None:
            try:
                return self.source_for(spec).history(job.submitted_at, end)
            except GreenAIError as exc:
                log.info("no intensity history for job %s: %s", job.id, exc)
        return self.forecast(spec)

    # -- start-up and shut-down --------------------------------------------------------------

    def reconcile(self, now: datetime) -> int:
        """Settle jobs left ``running`` by a daemon that died: stop their orphaned commands,
        then re-queue each within its retry budget or fail it. Returns how many were settled."""
        settled = 0
        for job in self.store.jobs_in([JobState.RUNNING]):
            if job.id in self._running or job.host not in (None, self.config.host):
                continue
            if job.pid is not None:
                self.executor.stop_orphan(job.id, job.pid)
            settled += self._settle_interrupted(job, now, "the daemon stopped while it ran")
        return settled

    def _settle_interrupted(
        self, job: JobRecord, now: datetime, cause: str, crashed: bool = True
    ) -> int:
        """Re-queue, fail or cancel an interrupted run; only a crash spends the retry budget."""
        budget = self.config.retry_budget
        if job.cancel_requested:
            new, why = JobState.CANCELLED, f"{cause}; it was being cancelled"
        elif not crashed or job.attempts <= budget:
            new, why = (
                JobState.QUEUED,
                f"{cause}; re-queued (attempt {job.attempts}, budget {budget})",
            )
        else:
            new, why = JobState.FAILED, f"{cause}; retry budget of {budget} spent"
        final = {"finished_at": now} if new.is_final else {"planned_start": None}
        return int(
            self._move(
                job,
                JobState.RUNNING,
                new,
                Event(now, "reconcile", why),
                pid=None,
                gpu_ids=None,
                **final,
            )
        )

    def drain(self, clock: Clock, grace_s: float, poll_s: float = 0.2) -> None:
        """SIGTERM: start nothing new, let running jobs finish within ``grace_s``, then stop
        the rest and re-queue them."""
        self.dispatching = False
        deadline = time.monotonic() + grace_s
        while self._running and time.monotonic() < deadline:
            self._reap(clock.now())
            if self._running:
                time.sleep(poll_s)
        for job_id, running in list(self._running.items()):
            self.executor.cancel(running.handle, force=True)
            for _ in range(50):
                if self.executor.poll(running.handle) is not None:
                    break
                time.sleep(0.02)
            del self._running[job_id]
            cause = "stopped at daemon shutdown after the grace period"
            self._settle_interrupted(self.store.get(job_id), clock.now(), cause, crashed=False)

    # -- helpers -----------------------------------------------------------------------------

    def _move(
        self, job: JobRecord, expected: JobState, new: JobState, event: Event, **changes: Any
    ) -> bool:
        try:
            self.store.transition(job.id, expected, new, event, **changes)
        except InvalidTransition as exc:
            log.info("job %s: %s", job.id, exc)
            return False
        return True

    def _log_decision(self, decision: Decision) -> None:
        if self.evidence is not None:
            self.evidence.record_decision(decision)


def run_until_idle(engine: Engine, clock: Clock, step_s: float = 60.0, max_ticks: int = 100) -> int:
    """Tick, advancing ``clock``, until nothing waits or runs (tests' burst mode).
    Returns the ticks taken."""
    for count in range(1, max_ticks + 1):
        engine.tick(clock.now())
        if not engine.running_jobs and not engine.store.jobs_in(WAITING):
            return count
        clock.wait(step_s)
    return max_ticks
