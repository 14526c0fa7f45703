"""Assembling a ``RunRecord`` from what a front-end knows when a run ends.

The CLI, the daemon and the engine all finish a run the same way: a meter reading, the
intensity history over ``[submit, finish]`` (actual values where the source has them), the
job and the decision that started it. ``build_run_record`` does the accounting once so each
front-end stays thin. Without a usable history the operational figures are unknown (empty
cells in the CSV), never a made-up 0.
"""

from __future__ import annotations

import logging
import shlex
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime

from greenai.core.domain import EnergyReading, Forecast, RunRecord, Signal, provider_of
from greenai.core.settings import Settings
from greenai.evidence.accounting import counterfactual, embodied_grams, time_resolved_intensity

logger = logging.getLogger(__name__)


def build_run_record(
    reading: EnergyReading,
    settings: Settings,
    *,
    job_id: str,
    command: str | Sequence[str],
    submitted_at: datetime,
    exit_code: int | None,
    policy: str,
    decision: str,
    history: Forecast | None,
    forecast_intensity: float | None = None,
    provider: str | None = None,
    region: str | None = None,
    signal: Signal | None = None,
    fallback: str | None = None,
    job_name: str = "",
    run_id: str | None = None,
    host: str | None = None,
) -> RunRecord:
    """A complete ``RunRecord``; ``provider``/``region``/``signal``/``fallback`` default to
    what ``history`` says about itself."""
    operational_g, actual = _operational(reading, history)
    cf_intensity, cf_grams = _counterfactual(reading, submitted_at, history)
    duration_s = (reading.finished_at - reading.started_at).total_seconds()
    return RunRecord(
        run_id=run_id or uuid.uuid4().hex,
        job_id=job_id,
        job_name=job_name,
        command=command if isinstance(command, str) else shlex.join(command),
        host=host or socket.gethostname(),
        submitted_at=submitted_at,
        started_at=reading.started_at,
        finished_at=reading.finished_at,
        exit_code=exit_code,
        policy=policy,
        decision=decision,
        provider=provider or (provider_of(history.source) if history else ""),
        region=region or (history.region if history else ""),
        signal=signal or (history.signal if history else Signal.AVERAGE),
        forecast_intensity=forecast_intensity,
        actual_intensity=actual,
        energy=reading,
        operational_g=operational_g,
        embodied_g=embodied_grams(settings, reading.gpu_count, duration_s),
        functional_unit=settings.functional_unit,
        units=settings.units,
        counterfactual_intensity=cf_intensity,
        counterfactual_g=cf_grams,
        fallback=fallback or (history.fallback if history else None),
    )


def _operational(reading: EnergyReading, history: Forecast | None) -> tuple[float, float | None]:
    if history is None:
        return float("nan"), None
    try:
        return time_resolved_intensity(reading, history)
    except ValueError as exc:
        logger.warning("no actual intensity for the run: %s", exc)
        return float("nan"), None


def _counterfactual(
    reading: EnergyReading, submitted_at: datetime, history: Forecast | None
) -> tuple[float | None, float | None]:
    if history is None:
        return None, None
    try:
        return counterfactual(reading, submitted_at, history)
    except ValueError as exc:
        logger.warning("no counterfactual for the run: %s", exc)
        return None, None
