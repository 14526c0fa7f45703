"""Interruptible jobs in the daemon: run in pieces, paused and resumed.

A job runs in pieces when it is interruptible, its policy pauses (``interruptible``) and the
executor can pause. Its first piece starts as any job starts (the re-plan decides it); from then
on the job is *in pieces* (``JobRecord.pieces`` > 0) and each tick asks the same policy, with
the work left, whether each running piece goes on and each paused job resumes
(``piece_decisions``). A piece stopped on a pause request leaves the job ``paused``; a piece
that ends on its own ends the job. Each piece is a run of its own, metered and accounted, so
the job's evidence is one row per piece; ``piece_note`` is what each row's notes say.

Pure: the engine does the I/O and passes ``now`` and the forecasts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from greenai.core.domain import Action, Decision, Forecast, Job, JobState, provider_of
from greenai.core.errors import ConfigError
from greenai.core.settings import signal_number
from greenai.executors.base import Exited
from greenai.policies.base import UNLIMITED, JobBatch
from greenai.policies.interruptible import Interruptible
from greenai.policies.planning import axis_origin, forecast_view
from greenai.policies.registry import get_policy
from greenai.policies.view import EPS
from greenai.scheduling.runs import Outcome, outcome_of
from greenai.storage.records import JobRecord

PIECES_POLICY = Interruptible.name


def runs_in_pieces(record: JobRecord, policy: str | None, can_pause: bool) -> bool:
    """Whether a job starting now under ``policy`` (the decision's) runs in pieces."""
    if record.pieces:
        return True
    if not (can_pause and record.job.interruptible and policy):
        return False
    try:
        return get_policy(policy).pauses
    except ConfigError:  # a policy this build does not know: it cannot pause the job
        return False


def work_left_s(record: JobRecord, now: datetime) -> float:
    """Seconds of the declared duration not yet run: less the finished pieces, and the piece
    running now for as long as it has run."""
    ran = record.ran_s
    if record.state is JobState.RUNNING and record.started_at is not None:
        ran += max(0.0, (now - record.started_at).total_seconds())
    return max(0.0, record.job.duration.total_seconds() - ran)


def piece_decisions(
    records: Sequence[JobRecord],
    forecast_for: Callable[[str | None], Forecast | None],
    now: datetime,
) -> list[Decision]:
    """The pauses and resumes to make now among jobs in pieces (running or paused); a job left
    as it is has no decision. A running piece whose declared work is spent goes on (a job that
    overruns its estimate is not stopped); a paused job with none left resumes to finish."""
    groups: dict[str | None, list[JobRecord]] = {}
    for record in records:
        groups.setdefault(record.job.provider, []).append(record)
    decisions: list[Decision] = []
    for provider, group in groups.items():
        decisions.extend(_group_decisions(group, forecast_for(provider), now))
    return decisions


def _group_decisions(
    records: list[JobRecord], forecast: Forecast | None, now: datetime
) -> list[Decision]:
    left = [work_left_s(record, now) for record in records]
    if forecast is None or forecast.static or not forecast.covers(now):
        why = "no usable forecast: resumed now"
        return [
            _decision(record, Action.RESUME, why, now, forecast)
            for record in records
            if record.state is JobState.PAUSED
        ]
    origin = axis_origin(forecast, now)
    batch = JobBatch.columns(
        origin,
        ids=[record.id for record in records],
        submitted_at=[record.job.submitted_at for record in records],
        deadline_at=[record.job.deadline for record in records],
        duration_s=[record.job.duration.total_seconds() for record in records],
        interruptible=[True] * len(records),
        remaining_s=left,
    )
    at = (now - origin).total_seconds()
    plan = Interruptible().plan(batch, forecast_view(forecast, now, origin), at, UNLIMITED)
    run_for = plan.run_for if plan.run_for is not None else np.zeros(len(records))
    decisions = []
    for i, record in enumerate(records):
        runs = float(run_for[i]) > EPS or left[i] <= EPS
        if record.state is JobState.PAUSED and runs:
            reason = "its declared work is spent: resumed to finish" if left[i] <= EPS else ""
            decisions.append(
                _decision(record, Action.RESUME, reason or plan.reasons[i], now, forecast)
            )
        elif record.state is JobState.RUNNING and not runs:
            start = batch.at(float(plan.starts[i])) if plan.starts[i] > at + EPS else None
            decisions.append(_decision(record, Action.PAUSE, plan.reasons[i], now, forecast, start))
    return decisions


def _decision(
    record: JobRecord,
    action: Action,
    reason: str,
    now: datetime,
    forecast: Forecast | None,
    next_start: datetime | None = None,
) -> Decision:
    usable = forecast is not None and forecast.covers(now)
    return Decision(
        now,
        record.id,
        PIECES_POLICY,
        action,
        reason,
        intensity=forecast.value_at(now) if forecast is not None and usable else None,
        planned_start=next_start or (now if action is Action.RESUME else None),
        deadline=record.job.deadline,
        provider=provider_of(forecast.source) if forecast is not None else None,
        region=forecast.region if forecast is not None else None,
        signal=forecast.signal if forecast is not None else None,
        fallback=forecast.fallback if forecast is not None else None,
        warnings=forecast.warnings if forecast is not None else (),
    )


def pause_with(job: Job, signum: int, grace_s: float) -> tuple[int, float]:
    """The signal and grace that pause ``job``: its own where it names them, else the daemon's
    (``signum``, ``grace_s``)."""
    if job.pause_signal is not None:
        signum = signal_number(job.pause_signal)
    if job.pause_grace is not None:
        grace_s = job.pause_grace.total_seconds()
    return signum, grace_s


def shutdown_pause(record: JobRecord, now: datetime) -> Decision:
    """The pause of a running piece when the daemon stops (SIGTERM): it checkpoints now
    instead of being killed after the grace."""
    why = "the daemon is stopping: paused, to resume once a daemon runs again"
    return _decision(record, Action.PAUSE, why, now, None)


def piece_outcome(record: JobRecord, exited: Exited) -> Outcome:
    """How a piece's end leaves its job: paused when it was stopped on a pause request
    (whatever it exited with: the command checkpoints and exits as it likes), else as a whole
    run ends it (done, failed, cancelled, stopped at a limit)."""
    if not exited.paused or record.cancel_requested or exited.limit is not None:
        return outcome_of(record, exited)
    ran = record.ran_s + (exited.finished_at - exited.started_at).total_seconds()
    total = record.job.duration.total_seconds()
    reason = (
        f"piece {record.pieces} paused (exit {exited.exit_code}); "
        f"{_span(ran)} of {_span(total)} declared run so far"
    )
    return Outcome(JobState.PAUSED, "paused", reason)


def piece_changes(record: JobRecord, exited: Exited, state: JobState) -> dict[str, Any]:
    """What a piece's end stores on its job: the time run so far, and how the job ended
    when it did (a paused job keeps no GPUs, ends nothing)."""
    ran_s = record.ran_s + (exited.finished_at - exited.started_at).total_seconds()
    if not state.is_final:
        return {"ran_s": ran_s, "gpu_ids": None}
    return {"ran_s": ran_s, "finished_at": exited.finished_at, "exit_code": exited.exit_code}


def piece_note(piece: int, state: JobState) -> str:
    """What a piece's evidence row says of it: which piece, and whether more follow."""
    if state is JobState.PAUSED:
        return f"piece {piece} of an interruptible job, paused: more pieces follow"
    return f"piece {piece} of {piece}: the last of an interruptible job's pieces"


def _span(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))
