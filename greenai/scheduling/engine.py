"""One pass of the daemon: reap, refresh forecasts, expire, re-plan, dispatch.

Interruptible jobs run in pieces, paused and resumed (``greenai.scheduling.pieces``).

``Engine.tick(now)`` never raises: each stage runs on its own, and a failing stage is logged,
counted in ``EngineStats`` and tried again on the next tick. The store is the truth about job
states (every change a compare-and-set stored with the event that explains it) and keeps each
run's executor handle; the engine's memory holds only what it can rebuild: the runs it watches
and the forecast cache. ``reconcile`` re-attaches, after a restart, to every run this host left
running and learns how the finished ones ended; ``drain`` is the SIGTERM path.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from greenai.core.domain import Action, Decision, Forecast, JobState, OnDeadline
from greenai.core.errors import ExecutorError, InvalidTransition
from greenai.core.time import Clock, format_time
from greenai.evidence.decisions import decode_decision, encode_decision
from greenai.evidence.records import FinishedRun, account_run
from greenai.evidence.sci import evidence_entry
from greenai.executors.base import (
    Executor,
    Exited,
    ForeseesMeterNotes,
    Handle,
    Launch,
    Lost,
    Running,
    RunStatus,
    SubmitsAhead,
    pick_gpus,
)
from greenai.policies.base import RigidDemand
from greenai.policies.fleet import FleetSettings
from greenai.policies.rigid_demand import ended, rigid_hourly
from greenai.providers.base import IntensitySource
from greenai.scheduling.admission import admit_plans, ledger_for
from greenai.scheduling.config import EngineConfig, EngineStats, EvidenceSink
from greenai.scheduling.forecasts import ForecastBook
from greenai.scheduling.pieces import (
    pause_with,
    piece_changes,
    piece_decisions,
    piece_note,
    piece_outcome,
    runs_in_pieces,
    shutdown_pause,
)
from greenai.scheduling.planner import GroupPlan, Held, QueueCapacity, QueueDefaults, plan_queue
from greenai.scheduling.runs import (
    Outcome,
    outcome_of,
    run_summary,
    stand_in_reading,
    with_energy_notes,
)
from greenai.storage.records import Event, InstanceRecord, JobRecord
from greenai.storage.store import Store

log = logging.getLogger(__name__)

WAITING = (JobState.QUEUED, JobState.SCHEDULED)
REPLAN_TOLERANCE = timedelta(seconds=1)
# Plans are written in transactions of this many jobs, so submissions waiting for SQLite's one
# writer get their turn between them instead of after a whole 10,000-job re-plan.
PLAN_WRITE_CHUNK = 250
# Jobs handed to an executor that holds them until their start (Slurm), and runs withdrawn,
# per tick: a long queue is handed over over several ticks rather than in one long one.
HANDOVER_BATCH = 100


@dataclass
class _Watched:
    """A run the engine watches: its job as claimed, its handle, when a stop was first asked
    and whether a pause was."""

    job: JobRecord
    handle: Handle
    cancel_sent: float | None = None
    pause_sent: bool = False


class Engine:
    """The daemon's loop body; thread-safe for one ticking thread plus API readers."""

    def __init__(
        self,
        store: Store,
        executor: Executor,
        config: EngineConfig,
        source_for: Callable[[str], IntensitySource] | None = None,
        evidence: EvidenceSink | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.config = config
        self.source_for = source_for
        self.evidence = evidence
        self.stats = EngineStats()
        self.dispatching = True
        self.forecasts = ForecastBook(
            source_for,
            self.stats,
            horizon=config.horizon,
            refresh_every=config.refresh_every,
            background=config.background_fetch,
            history_deadline_s=config.history_deadline_s,
        )
        self._watched: dict[str, _Watched] = {}
        # This pass's start decisions, and whether each was already logged: the decision that
        # starts a job is stored with its dispatch, in the policy's own words.
        self._starting: dict[str, tuple[Decision, bool]] = {}
        self._demand: tuple[int, RigidDemand | None] | None = None  # (epoch hour, demand)
        self._defaults = QueueDefaults(
            config.default_provider,
            config.policy,
            config.threshold,
            can_pause=executor.can_pause,
            max_flexible_fraction=config.settings.max_flexible_fraction,
        )

    # -- the loop ----------------------------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """One pass; never raises."""
        failing: dict[str, str] = {}
        for name, stage in (
            ("heartbeat", self._heartbeat),
            ("adopt", self._adopt),
            ("reap", self._reap),
            ("refresh", self._refresh),
            ("expire", self._expire),
            ("plan", self._plan),
            ("pieces", self._pieces),
            ("hand over", self._hand_over),
            ("dispatch", self._dispatch),
        ):
            try:
                stage(now)
            except Exception as exc:  # one stage failing must not stop the others
                self.stats.stage_errors[name] = self.stats.stage_errors.get(name, 0) + 1
                failing[name] = _described(exc)
                self.stats.last_error = f"{name}: {failing[name]}"
                log.exception("tick stage %s failed; retrying next tick", name)
        # The plan's start decisions serve this tick's dispatch only (the next plan makes them
        # again): held to the next tick, a 100,000-job queue's 20,000 kept ~12 MB alive.
        self._starting.clear()
        self.stats.failing_stages = failing
        self.stats.ticks += 1
        self.stats.last_tick_at = now

    @property
    def running_jobs(self) -> int:
        return len(self._watched)

    def forecast(self, spec: str | None = None) -> Forecast | None:
        return self.forecasts.get(spec or self.config.default_provider)

    def close(self) -> None:
        """Stop the background fetches (the daemon, once it has drained)."""
        self.forecasts.close()

    # -- stages ------------------------------------------------------------------------------

    def _refresh(self, now: datetime) -> None:
        specs = {spec or self.config.default_provider for spec in self.store.waiting_providers()}
        self.forecasts.refresh(specs | {self.config.default_provider}, now)

    def _expire(self, now: datetime) -> None:
        for record in self.store.expiring(now):
            job = record.job
            if job.on_deadline is OnDeadline.EXPIRE and job.deadline <= now:
                decision = Decision(
                    now,
                    job.id,
                    job.policy or self.config.policy,
                    Action.EXPIRE,
                    "deadline passed before the job could start",
                    deadline=job.deadline,
                )
                event = Event(now, "expire", decision.reason, encode_decision(decision))
                if self._move(record, record.state, JobState.EXPIRED, event):
                    self._log_decision(decision)

    def _plan(self, now: datetime) -> None:
        self._starting.clear()
        waiting = self.store.waiting_for_plan()
        capacity = self._capacity(now)
        groups = plan_queue(
            waiting, self.forecast, now, self._defaults, capacity, self._meter_notes()
        )
        self._admit(groups, now)
        for group in groups:
            self._reject(group, now)
            moved = group.moved(REPLAN_TOLERANCE)
            logged: set[str] = set()
            for first in range(0, len(moved), PLAN_WRITE_CHUNK):
                applied = self.store.set_plans(group.rows(moved[first : first + PLAN_WRITE_CHUNK]))
                if self.evidence is not None and len(applied):
                    self.evidence.record_decisions(applied.payloads)
                logged.update(applied.job_ids)
            if logged:
                log.info("re-planned %d of %d waiting jobs for %s", len(logged),
                         len(group.jobs), group.provider)  # fmt: skip
            for decision in group.starting():
                self._starting[decision.job_id] = (decision, decision.job_id in logged)

    def _capacity(self, now: datetime) -> QueueCapacity:
        """The slots, what this daemon's runs hold until their declared ends (a run past its
        end holds on), and the rigid demand of the ended hours the fleet planner learns from."""
        held = tuple(
            Held(watched.job.started_at + watched.job.job.duration, watched.job.job.gpus,
                 rigid=not watched.job.job.flexible)
            for watched in self._watched.values()
            if watched.job.job.gpus and watched.job.started_at is not None
        )  # fmt: skip
        slots = len(self.config.gpu_slots)
        return QueueCapacity(slots, self._gpus_in_use(), held, self._rigid_demand(now))

    def _rigid_demand(self, now: datetime) -> RigidDemand | None:
        """Learned once an hour, for a daemon whose default policy plans onto the capacity."""
        if self.config.policy != "fleet":
            return None
        hour = int(now.timestamp() // 3600)
        if self._demand is None or self._demand[0] != hour:
            since = now - timedelta(days=FleetSettings().reserve_days)
            observed, arrivals = self.store.rigid_arrivals(since)
            learned = None  # nothing submitted yet: no past hour to learn from
            if observed is not None:
                demand = rigid_hourly(
                    np.asarray([at.timestamp() for at, _, _ in arrivals], dtype=np.float64),
                    np.asarray([seconds for _, seconds, _ in arrivals], dtype=np.float64),
                    np.asarray([gpus for _, _, gpus in arrivals], dtype=np.float64),
                    observed.timestamp(),
                )
                learned = ended(demand, now.timestamp())
            self._demand = (hour, learned)
        return self._demand[1]

    def _meter_notes(self) -> Callable[[int], tuple[str, ...]] | None:
        """By GPU count: what the executor's meters will not measure (on the first slots)."""
        executor = self.executor
        if not isinstance(executor, ForeseesMeterNotes):
            return None
        slots = tuple(self.config.gpu_slots)
        return lambda gpus: executor.meter_notes(slots[:gpus])

    def _admit(self, groups: list[GroupPlan], now: datetime) -> None:
        """Hold or reject the jobs that would overrun their project's carbon budget."""
        budgets = self.store.budgets()
        if not budgets or not any(set(g.jobs.projects) & budgets.keys() for g in groups):
            return
        power_watts = self.config.settings.power_watts
        ledger = ledger_for(self.store, budgets, now, power_watts, scheduled=False)
        if refused := admit_plans(groups, ledger, now, power_watts):
            log.info("carbon budgets hold or reject %d waiting jobs", refused)

    def _reject(self, group: GroupPlan, now: datetime) -> None:
        for index, decision in group.rejected().items():
            record_state = group.jobs.states[index]
            event = Event(now, "reject", decision.reason, encode_decision(decision))
            try:
                self.store.transition(
                    decision.job_id, record_state, JobState.REJECTED, event,
                    finished_at=now, planned_start=None,
                )  # fmt: skip
            except InvalidTransition as exc:
                log.info("job %s: %s", decision.job_id, exc)
                continue
            self._log_decision(decision)

    def _gpus_in_use(self, busy: set[int] | None = None) -> int:
        """GPU slots held: the claims on this host (shared with any sibling daemon), or for an
        executor that picks GPUs itself, what this daemon's runs hold."""
        if not self.executor.picks_gpus:
            return len(self.store.busy_gpu_ids(self.config.host) if busy is None else busy)
        return sum(watched.job.job.gpus for watched in self._watched.values())

    def _dispatch(self, now: datetime) -> None:
        if not self.dispatching:
            return
        due = [j for j in self.store.upcoming(limit=1000) if j.planned_start <= now]  # type: ignore[operator]
        due.sort(key=lambda record: (record.job.latest_start, record.planned_start))
        busy = self.store.busy_gpu_ids(self.config.host)
        free = len(self.config.gpu_slots) - self._gpus_in_use(busy)
        for record in due:
            if _handed_over(record):  # the executor runs it at its start: claim it now
                self._start(record, (), now)
                continue
            if record.job.gpus > free:
                continue
            gpus: tuple[int, ...] | None = ()
            if not self.executor.picks_gpus:
                gpus = pick_gpus(self.config.gpu_slots, busy, record.job.gpus)
            if gpus is not None and self._start(record, gpus, now):
                busy.update(gpus)
                free -= record.job.gpus

    def _pieces(self, now: datetime) -> None:
        """Pause the running pieces the policy would stop now, resume the paused jobs it
        would run (GPUs permitting; before new starts, as work under way)."""
        records = [
            record
            for record in self.store.jobs_in([JobState.RUNNING, JobState.PAUSED])
            if record.pieces and (record.state is JobState.PAUSED or record.id in self._watched)
        ]
        if not records:
            return
        by_id = {record.id: record for record in records}
        busy = self.store.busy_gpu_ids(self.config.host)
        for decision in piece_decisions(records, self.forecast, now):
            record = by_id[decision.job_id]
            if decision.action is Action.PAUSE:
                self._pause(self._watched[record.id], decision, now)
            elif self.dispatching:
                busy.update(self._resume(record, decision, busy, now))

    def _pause(self, watched: _Watched, decision: Decision, now: datetime) -> None:
        """Ask a running piece to pause; the job is paused when the piece has stopped."""
        if watched.pause_sent:
            return
        config = self.config
        signum, grace_s = pause_with(watched.job.job, config.pause_signal, config.pause_grace_s)
        self.executor.pause(watched.handle, signum, grace_s)
        watched.pause_sent = True
        self.store.add_event(
            decision.job_id, Event(now, "pause", decision.reason, encode_decision(decision))
        )
        self._log_decision(decision)

    def _resume(
        self, record: JobRecord, decision: Decision, busy: set[int], now: datetime
    ) -> tuple[int, ...]:
        """Start the job's next piece if its GPUs are free (else it stays paused until a tick
        finds them free); the GPUs it now holds."""
        free = len(self.config.gpu_slots) - self._gpus_in_use(busy)
        if record.job.gpus > free:
            return ()
        gpus: tuple[int, ...] | None = ()
        if not self.executor.picks_gpus:
            gpus = pick_gpus(self.config.gpu_slots, busy, record.job.gpus)
        if gpus is None:
            return ()
        self._starting[record.id] = (decision, False)
        return gpus if self._start(record, gpus, now) else ()

    def _start(self, record: JobRecord, gpus: tuple[int, ...], now: datetime) -> bool:
        """Claim the job and store where its run will be found, then start the run; ``True``
        if it now holds its GPUs. A job in pieces starts its next piece (resumed when paused)."""
        job, attempt = record.job, record.attempts + 1
        expected = JobState.SCHEDULED
        if record.env_withheld is not None:  # no key here opens its env: it cannot start
            fail = Event(now, "fail", f"could not start: {record.env_withheld}")
            if self._move(record, record.state, JobState.FAILED, fail, finished_at=now):
                log.error("job %s could not start: %s", job.id, record.env_withheld)
            return False
        decision, logged = self._starting.pop(job.id, (None, True))
        if decision is None and record.plan is not None:
            decision = decode_decision(record.plan)
        piece = 0
        if runs_in_pieces(record, decision.policy if decision else None, self.executor.can_pause):
            piece = record.pieces + 1
        if record.state is JobState.PAUSED:  # a resumed piece is no new attempt
            expected, attempt = JobState.PAUSED, record.attempts
        launch = self._launch(record, attempt, gpus, piece)
        handed = _handed_over(record) and expected is JobState.SCHEDULED
        handle = Handle.from_json(record.handle) if handed else self.executor.handle_for(launch)  # type: ignore[arg-type]
        payload = encode_decision(decision) if decision is not None else "{}"
        where = f"started on GPUs {list(gpus)} of {self.config.host}"
        if piece:
            where = f"piece {piece} {where}"
        action = "resume" if expected is JobState.PAUSED else "dispatch"
        event = Event(now, action, where, payload)
        try:
            claimed = self.store.claim(
                job.id,
                event,
                expected,
                pieces=piece,
                instance_id=self.config.instance_id,
                started_at=now,
                attempts=attempt,
                host=self.config.host,
                gpu_ids=list(gpus),
                handle=handle.to_json(),
                plan=json.loads(payload) if decision is not None else record.plan,
                log_path=str(launch.log_path),
                cancel_requested=False,
                finished_at=None,
                exit_code=None,
            )
        except InvalidTransition as exc:
            log.info("job %s not started: %s", job.id, exc)
            return False
        if not logged and self.evidence is not None:
            self.evidence.record_decisions([payload])
        if handed:  # already in the executor's hands, due now: nothing more to submit
            self._watched[job.id] = _Watched(claimed, handle)
            return True
        try:
            started = self.executor.submit(launch)
        except Exception as exc:  # whatever it was, the job must not stay claimed
            self.stats.start_failures += 1
            cause = str(exc) if isinstance(exc, ExecutorError) else _described(exc)
            fail = Event(now, "fail", f"could not start: {cause}")
            self._move(claimed, JobState.RUNNING, JobState.FAILED, fail, finished_at=now)
            log.error("job %s could not start: %s", job.id, cause)
            return False
        if started != handle:
            self.store.update_running(job.id, handle=started.to_json())
        self._watched[job.id] = _Watched(claimed, started)
        return True

    def _launch(
        self, record: JobRecord, attempt: int, gpus: tuple[int, ...], piece: int = 0
    ) -> Launch:
        job = record.job
        state_dir = self.config.runs_dir / job.id / (f"piece-{piece}" if piece else str(attempt))
        return Launch(
            job.id,
            attempt,
            job.command,
            job.gpus,
            gpus,
            state_dir,
            job.cwd,
            job.env,
            stop_at=job.deadline if job.on_deadline is OnDeadline.EXPIRE else None,
            grace_s=self.config.grace_s,
            max_runtime=job.max_runtime,
            log_max_bytes=self.config.log_max_bytes,
            log_backups=self.config.log_backups,
            piece=piece,
        )

    def _hand_over(self, now: datetime) -> None:
        """For an executor that holds jobs until their start (Slurm's ``--begin``): withdraw
        the runs of jobs that ended before they started (cancelled, expired, rejected), hand
        the jobs planned to start within its ``ahead`` over to it, and move the ones whose
        planned start a re-plan moved."""
        executor = self.executor
        if not isinstance(executor, SubmitsAhead):
            return
        for dropped in self.store.handed_over_and_dropped(HANDOVER_BATCH):
            self.executor.cancel(Handle.from_json(dropped.handle or {}), force=True)
            self.store.forget_handle(dropped.id)
            log.info("job %s %s before its start: its run is withdrawn", dropped.id, dropped.state)
        if not self.dispatching:
            return
        horizon = now + executor.ahead
        for record in self.store.upcoming(limit=HANDOVER_BATCH):
            start = record.planned_start
            if start is None or start > horizon or (start <= now and not _handed_over(record)):
                continue  # not yet; or due now: dispatch submits it as any other executor's
            if not _handed_over(record):
                self._submit_ahead(executor, record, start, now)
            elif Handle.from_json(record.handle or {}).ref.get("begin") != format_time(start):
                self._move_handed(executor, record, start, now)

    def _submit_ahead(
        self, executor: SubmitsAhead, record: JobRecord, start: datetime, now: datetime
    ) -> None:
        launch = self._launch(record, record.attempts + 1, ())
        try:
            handle = executor.submit_at(launch, start)
        except ExecutorError as exc:  # it is submitted at its start instead
            log.warning("job %s: could not hand it over before its start: %s", record.id, exc)
            return
        ref = {**handle.ref, "begin": format_time(start)}
        stored = replace(handle, ref=ref).to_json()
        event = Event(now, "handover", f"handed to {self.executor.name} ({_ref_text(ref)}), "
                      f"held until its planned start {format_time(start)}")  # fmt: skip
        if not self.store.hand_over(record.id, stored, event):  # left scheduled meanwhile
            self.executor.cancel(replace(handle, ref=ref), force=True)

    def _move_handed(
        self, executor: SubmitsAhead, record: JobRecord, start: datetime, now: datetime
    ) -> None:
        handle = Handle.from_json(record.handle or {})
        if not executor.move(handle, start):
            return  # it no longer waits: claimed as due at its (old) start, which has passed
        ref = {**handle.ref, "begin": format_time(start)}
        event = Event(now, "handover", f"moved in {self.executor.name} to {format_time(start)}")
        self.store.hand_over(record.id, replace(handle, ref=ref).to_json(), event)

    def _reap(self, now: datetime) -> None:
        if not self._watched:
            return
        records = {record.id: record for record in self.store.jobs_in([JobState.RUNNING])}
        for job_id, watched in list(self._watched.items()):
            record = records.get(job_id)
            if record is None:  # moved on without us (another replica settled it)
                del self._watched[job_id]
                continue
            if record.cancel_requested:
                self._stop(watched)
            self._settle(record, watched.handle, self._status(watched.handle, attach=False), now)

    def _status(self, handle: Handle, *, attach: bool) -> RunStatus:
        """What the executor says of a run; an executor that cannot say has lost it."""
        try:
            return self.executor.attach(handle) if attach else self.executor.poll(handle)
        except Exception as exc:
            log.exception("job %s: the executor could not tell how its run is", handle.job_id)
            return Lost(f"the executor could not tell: {_described(exc)}")

    def _settle(self, record: JobRecord, handle: Handle, status: object, now: datetime) -> None:
        """Act on what the executor says of a run: keep watching, finish it, or settle it.
        A run stays watched until it is settled: if settling fails (the store is down), the
        next tick tries again instead of forgetting the run."""
        if isinstance(status, Running):
            self._watched.setdefault(record.id, _Watched(record, handle))
            return
        if isinstance(status, Exited):
            self._finish(record, status, now)
        elif isinstance(status, Lost):
            self.stats.lost_runs += 1
            self._settle_interrupted(record, now, f"its run was lost ({status.reason})")
        self._watched.pop(record.id, None)

    def _stop(self, watched: _Watched) -> None:
        if watched.cancel_sent is None:
            watched.cancel_sent = time.monotonic()
            self.executor.cancel(watched.handle)
        elif time.monotonic() - watched.cancel_sent > self.config.cancel_grace_s:
            self.executor.cancel(watched.handle, force=True)

    def _finish(self, record: JobRecord, exited: Exited, now: datetime) -> None:
        """Account the run, end the job with its run stored (one transaction), then append its
        evidence row and note that it is safely there. A failure to account (a provider's
        history that raises) still ends the job, with the run accounted without intensity and
        the cause in its event."""
        settings = self.config.settings
        reading = exited.reading or stand_in_reading(record, exited, settings)
        outcome = outcome_of(record, exited)
        changes: dict[str, Any] = {"finished_at": exited.finished_at, "exit_code": exited.exit_code}
        if record.pieces:
            outcome = piece_outcome(record, exited)
            changes = piece_changes(record, exited, outcome.state)
        outcome = with_energy_notes(outcome, reading)
        for note in reading.notes:
            log.warning("job %s: energy (%s): %s", record.id, reading.meter, note)
        if record.pieces:  # one evidence row per piece, saying which
            note = piece_note(record.pieces, outcome.state)
            reading = replace(reading, notes=(*reading.notes, note))
        decision = decode_decision(record.plan) if record.plan else None
        run = FinishedRun(
            uuid.uuid4().hex,
            record.job,
            decision,
            reading,
            exited.exit_code,
            self.config.host,
            started_at=exited.started_at,
            finished_at=exited.finished_at,
        )
        try:
            evidence = account_run(run, self._history(record, reading.finished_at), settings)
        except Exception as exc:
            self.stats.accounting_failures += 1
            log.exception("job %s: accounting with the intensity history failed", record.id)
            evidence = account_run(run, None, settings)
            why = f"{outcome.reason}; accounted without intensity ({_described(exc)})"
            outcome = Outcome(outcome.state, outcome.action, why)
        row = evidence_entry(evidence)
        try:
            self.store.finish_run(
                record.id,
                outcome.state,
                Event(now, outcome.action, outcome.reason),
                run_summary(evidence, record.attempts, row),
                **changes,
            )
        except InvalidTransition as exc:
            log.info("job %s: %s", record.id, exc)
            return
        self._append_evidence(evidence.run_id, row, unless_present=False)

    def _history(self, record: JobRecord, end: datetime) -> Forecast | None:
        spec = record.job.provider or self.config.default_provider
        return self.forecasts.history(spec, record.job, end)

    def _append_evidence(self, run_id: str, row: dict[str, Any], *, unless_present: bool) -> None:
        if self.evidence is None:
            return
        self.evidence.record_run(row, unless_present=unless_present)
        self.store.mark_evidence_appended(run_id)

    # -- start-up and shut-down --------------------------------------------------------------

    def reconcile(self, now: datetime) -> int:
        """At start: register this daemon, append evidence rows a dead daemon stored but may
        not have written, then adopt every run on this host whose daemon is gone. Returns how
        many runs it adopted."""
        self.store.register_instance(
            InstanceRecord(self.config.instance_id, self.config.host, os.getpid(), now, now)
        )
        for run in self.store.runs_without_evidence():
            self._append_evidence(run.id, run.evidence, unless_present=True)
        return self._adopt(now)

    def _heartbeat(self, now: datetime) -> None:
        self.store.heartbeat(self.config.instance_id, now)

    def _adopt(self, now: datetime) -> int:
        """Re-attach to the runs on this host that no live daemon watches (the daemon that
        started them died): a sibling daemon's live runs are left alone."""
        running = self.store.jobs_in([JobState.RUNNING])
        if not running:
            return 0
        alive = live_instances(self.store.instances(), self.config.host, now, self.config.lease)
        alive.add(self.config.instance_id)
        adopted = 0
        for record in running:
            mine = record.host in (None, self.config.host)
            if record.id in self._watched or not mine or record.instance_id in alive:
                continue
            adopted += 1
            gone = record.instance_id or "an older greenai"
            self.store.update_running(record.id, instance_id=self.config.instance_id)
            self.store.add_event(record.id, Event(now, "adopt", f"taken over from {gone}, gone"))
            self._reattach(record, now)
        return adopted

    def _reattach(self, record: JobRecord, now: datetime) -> None:
        if record.handle is None:
            self._settle_interrupted(record, now, "the daemon stopped before its run started")
            return
        handle = Handle.from_json(record.handle)
        if handle.executor != self.executor.name:
            why = f"its run belongs to the {handle.executor} executor, not {self.executor.name}"
            self._settle_interrupted(record, now, why)
            return
        status = self._status(handle, attach=True)
        if isinstance(status, Running):
            reason = "re-attached to its run after a daemon restart"
            self.store.add_event(record.id, Event(now, "reattach", reason))
            log.info("job %s: %s", record.id, reason)
        self._settle(record, handle, status, now)

    def _settle_interrupted(
        self, job: JobRecord, now: datetime, cause: str, crashed: bool = True
    ) -> int:
        """Re-queue, fail or cancel an interrupted run; only a crash spends the retry budget.
        A job in pieces is paused instead of re-queued (its next piece resumes from its last
        checkpoint), a crash counting as an attempt."""
        budget = self.config.retry_budget
        if job.cancel_requested:
            new, why = JobState.CANCELLED, f"{cause}; it was being cancelled"
        elif not crashed or job.attempts <= budget:
            new = JobState.PAUSED if job.pieces else JobState.QUEUED
            done = "paused" if job.pieces else "re-queued"
            why = f"{cause}; {done} (attempt {job.attempts}, budget {budget})"
        else:
            new, why = JobState.FAILED, f"{cause}; retry budget of {budget} spent"
        final: dict[str, Any] = {"finished_at": now}
        if not new.is_final:
            final = {"planned_start": None, "plan": None}
        if new is JobState.PAUSED:
            final = {"attempts": job.attempts + 1} if crashed else {}
        event = Event(now, "reconcile", why)
        return int(self._move(job, JobState.RUNNING, new, event, gpu_ids=None, **final))

    def drain(self, clock: Clock, grace_s: float, poll_s: float = 0.2) -> None:
        """SIGTERM: start nothing new, let running jobs finish within ``grace_s``, then stop
        the rest and re-queue them. Pieces of interruptible jobs are paused at once: they
        checkpoint and resume once a daemon runs again."""
        self.dispatching = False
        for watched in list(self._watched.values()):
            if watched.job.pieces:
                self._pause(watched, shutdown_pause(watched.job, clock.now()), clock.now())
        deadline = time.monotonic() + grace_s
        while self._watched and time.monotonic() < deadline:
            self._reap(clock.now())
            if self._watched:
                time.sleep(poll_s)
        for job_id, watched in list(self._watched.items()):
            self.executor.cancel(watched.handle, force=True)
            status: RunStatus = Running()
            for _ in range(100):
                if not isinstance(status := self.executor.poll(watched.handle), Running):
                    break
                time.sleep(0.02)
            del self._watched[job_id]
            record = self.store.get(job_id)
            if record.pieces and isinstance(status, Exited):  # a piece ended: account it
                self._finish(record, status, clock.now())
                continue
            cause = "stopped at daemon shutdown after the grace period"
            self._settle_interrupted(record, clock.now(), cause, crashed=False)

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


def _handed_over(record: JobRecord) -> bool:
    """Whether an executor already holds this scheduled job's next attempt for its start
    (``SubmitsAhead``: its handle says until when). A re-queued job still carries the handle
    of the run it lost, which is no hand-over."""
    if record.state is not JobState.SCHEDULED or not record.handle:
        return False
    handle = Handle.from_json(record.handle)
    return "begin" in handle.ref and handle.attempt == record.attempts + 1


def _ref_text(ref: dict[str, Any]) -> str:
    return ", ".join(f"{key} {ref[key]}" for key in ("job_id", "name") if ref.get(key))


def live_instances(
    instances: list[InstanceRecord], host: str, now: datetime, lease: timedelta
) -> set[str]:
    """The instances still alive: a recent heartbeat, and on this host a process that still
    exists (a daemon killed here is dead at once, not only when its lease runs out)."""
    alive = set()
    for instance in instances:
        if now - instance.heartbeat_at > lease:
            continue
        if instance.host == host and not _process_exists(instance.pid):
            continue
        alive.add(instance.id)
    return alive


def _process_exists(pid: int) -> bool:
    """Whether ``pid`` is a live process. A zombie is not: a killed daemon's loop stays one
    until its new parent reaps it (1.7 s late under this VM's init, never under some container
    inits), and its runs should not wait out the whole lease for that."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it just went
        return True
    return status.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _described(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_until_idle(engine: Engine, clock: Clock, step_s: float = 60.0, max_ticks: int = 100) -> int:
    """Tick, advancing ``clock``, until nothing waits or runs (tests' burst mode).
    Returns the ticks taken."""
    for count in range(1, max_ticks + 1):
        engine.tick(clock.now())
        if not engine.running_jobs and not engine.store.has_waiting():
            return count
        clock.wait(step_s)
    return max_ticks
