"""How a run that ended is written up: its job state, its stored summary, its energy when the
executor could not measure it. Pure functions; the engine does the I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from greenai.core.domain import NOT_MEASURED, EnergyReading, JobState, RunRecord
from greenai.core.settings import Settings
from greenai.evidence.sci import saved_grams
from greenai.executors.base import Exited
from greenai.meters.config import MeterConfig
from greenai.meters.estimate import PowerModel
from greenai.storage.records import JobRecord, RunSummary


@dataclass(frozen=True, slots=True)
class Outcome:
    """The state a run leaves its job in, and the event that says why."""

    state: JobState
    action: str
    reason: str


def outcome_of(job: JobRecord, exited: Exited) -> Outcome:
    """Cancelled if a user asked, succeeded on exit 0, failed otherwise (with the executor's
    notes, e.g. why the command could not start). A run stopped at one of its limits (max
    runtime, deadline) did not finish: it fails whatever it exited with, its notes naming
    the limit."""
    code = exited.exit_code
    ended_well = code == 0 and exited.limit is None
    detail = f": {'; '.join(exited.notes)}" if exited.notes and not ended_well else ""
    if job.cancel_requested:
        return Outcome(JobState.CANCELLED, "cancel", f"stopped on request (exit {code})")
    if ended_well:
        return Outcome(JobState.SUCCEEDED, "finish", "command exited 0")
    return Outcome(JobState.FAILED, "fail", f"command exited {code}{detail}")


def with_energy_notes(outcome: Outcome, reading: EnergyReading) -> Outcome:
    """The outcome with how the run's energy was obtained in its event's reason, where the
    reading has notes (a meter that could not measure, GPUs not measured, an estimate): the
    SCI row has no column for them, the run's event in the database does."""
    if not reading.notes:
        return outcome
    energy = f"energy ({reading.meter}): {'; '.join(reading.notes)}"
    return Outcome(outcome.state, outcome.action, f"{outcome.reason}; {energy}")


def stand_in_reading(job: JobRecord, exited: Exited, settings: Settings) -> EnergyReading:
    """The run's energy when its executor measured nothing. Where the meters setting lets an
    estimate stand in (``auto``, ``estimate``): the estimate meter's model (the job's declared
    ``power_kw``, else the declared ``power_watts``, else TDP: what its carbon-budget estimate
    charged) over the run's real start and end, marked as such. Where it
    names meters: not measured (empty cells, meter ``none``), never an estimate nobody asked
    for. Either way the job's GPUs are counted and the notes say why."""
    gpu_count = len(job.gpu_ids) or job.job.gpus
    why = "the executor measured no energy"
    if exited.notes:
        why += f" ({'; '.join(exited.notes)})"
    if MeterConfig.from_settings(settings).may_estimate:
        declared = job.job.power_kw * 1000.0 if job.job.power_kw > 0 else settings.power_watts
        return PowerModel(declared, gpu_count).reading(exited.started_at, exited.finished_at, why)
    return EnergyReading(
        started_at=exited.started_at,
        finished_at=exited.finished_at,
        cpu_kwh=NOT_MEASURED,
        gpu_kwh=NOT_MEASURED,
        ram_kwh=NOT_MEASURED,
        meter="none",
        gpu_count=gpu_count,
        notes=(f"{why}: not measured, and meters={settings.meters} allows no estimate",),
    )


def run_summary(record: RunRecord, attempt: int, row: Mapping[str, Any]) -> RunSummary:
    """The stored summary of a run (what /jobs/{id} and /metrics show) with its SCI row,
    not yet known to be in the evidence file."""
    return RunSummary(
        id=record.run_id,
        job_id=record.job_id,
        attempt=attempt,
        started_at=record.started_at,
        finished_at=record.finished_at,
        exit_code=record.exit_code,
        energy_kwh=_finite(record.energy.energy_kwh),
        meter=record.energy.meter,
        actual_intensity=record.actual_intensity,
        operational_g=_finite(record.operational_g),
        embodied_g=record.embodied_g,
        counterfactual_g=record.counterfactual_g,
        saved_g=saved_grams(record),
        delay_s=record.delay_s,
        evidence=dict(row),
        evidence_appended=False,
    )


def _finite(value: float | None) -> float | None:
    return None if value is None or value != value else value
