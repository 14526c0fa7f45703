"""A finished run of a daemon job, accounted the way every front-end accounts runs
(``greenai.evidence.build_run_record``), and the summary of it the store keeps."""

from __future__ import annotations

from dataclasses import dataclass

from greenai.core.domain import EnergyReading, Forecast, RunRecord
from greenai.core.settings import Settings
from greenai.evidence import build_run_record
from greenai.scheduling.planner import effective_policy
from greenai.storage.records import JobRecord, RunSummary


@dataclass(frozen=True, slots=True)
class RunContext:
    """What the engine knew about a run beside its energy."""

    job: JobRecord
    exit_code: int | None
    history: Forecast | None  # intensity over [submit, finish], actuals where known
    planned_intensity: float | None
    host: str


def account_run(context: RunContext, reading: EnergyReading, settings: Settings) -> RunRecord:
    """The SCI record of one finished run."""
    job = context.job
    return build_run_record(
        reading,
        settings,
        job_id=job.id,
        command=job.command,
        submitted_at=job.submitted_at,
        exit_code=context.exit_code,
        policy=effective_policy(job, settings.policy, settings.threshold),
        decision="start",
        history=context.history,
        forecast_intensity=context.planned_intensity,
        job_name=job.name,
        host=context.host,
    )


def run_summary(record: RunRecord, attempt: int) -> RunSummary:
    """The stored summary of a run (what /jobs/{id} and /metrics show)."""
    saved = (
        record.counterfactual_g - record.operational_g
        if record.counterfactual_g is not None
        else None
    )
    return RunSummary(
        id=record.run_id,
        job_id=record.job_id,
        attempt=attempt,
        started_at=record.started_at,
        finished_at=record.finished_at,
        exit_code=record.exit_code,
        energy_kwh=record.energy.energy_kwh,
        meter=record.energy.meter,
        actual_intensity=record.actual_intensity,
        operational_g=record.operational_g,
        embodied_g=record.embodied_g,
        counterfactual_g=record.counterfactual_g,
        saved_g=saved,
        delay_s=record.delay_s,
        evidence={
            "provider": record.provider,
            "region": record.region,
            "signal": str(record.signal),
            "fallback": record.fallback,
            "forecast_intensity": record.forecast_intensity,
        },
    )
