"""One finished run -> its evidence record, whoever ran it.

`greenai run` and the daemon finish a run the same way: they know the job, the decision that
started it, the meter reading over the run, and the intensity history over ``[submit, finish]``
(actual values where the source has them). ``account_run`` does the accounting once, so the
SCI row means the same thing whichever front-end wrote it: ``policy`` and ``decision`` are the
policy and the reason of the decision that started the run. Without a usable history the
operational figures are unknown (empty cells in the CSV), never a made-up 0.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from greenai.core.domain import (
    Decision,
    EnergyReading,
    Forecast,
    Job,
    RunRecord,
    Signal,
    provider_of,
)
from greenai.core.errors import ProviderError
from greenai.core.settings import Settings
from greenai.evidence.accounting import (
    counterfactual,
    embodied_factors,
    embodied_share,
    time_resolved_intensity,
)
from greenai.providers.base import IntensitySource

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FinishedRun:
    """A run that ended: the job, the decision that started it and what the meter read.

    ``command`` is the command line as run, when it differs from the job's argv (a shell
    string); ``exit_code`` is as a shell reports it (128 + N when killed by signal N).
    ``started_at``/``finished_at`` are when the command really started and ended, where the
    executor recorded it (the meter's own window brackets the command); by default the
    reading's."""

    run_id: str
    job: Job
    decision: Decision | None
    reading: EnergyReading
    exit_code: int | None
    host: str
    command: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def account_run(run: FinishedRun, history: Forecast | None, settings: Settings) -> RunRecord:
    """The SCI record of ``run``; ``history`` is the intensity over ``[submit, finish]``."""
    job, reading, decision = run.job, run.reading, run.decision
    operational_g, actual = _operational(reading, history)
    cf_intensity, cf_grams = _counterfactual(reading, job.submitted_at, history)
    started_at = run.started_at or reading.started_at
    finished_at = run.finished_at or reading.finished_at
    duration_s = (finished_at - started_at).total_seconds()
    factors = embodied_factors(settings)
    source = _source(decision, history)
    same_figure = history is None or _source(None, history) == source
    if not same_figure:  # one source and one signal per row: the figures' own
        source = _source(None, history)
    return RunRecord(
        run_id=run.run_id,
        job_id=job.id,
        job_name=job.name,
        command=run.command if run.command is not None else shlex.join(job.command),
        host=run.host,
        submitted_at=job.submitted_at,
        started_at=started_at,
        finished_at=finished_at,
        exit_code=run.exit_code,
        policy=decision.policy if decision else (job.policy or ""),
        decision=decision.reason if decision else "",
        provider=source[0],
        region=source[1],
        signal=source[2],
        forecast_intensity=decision.forecast_intensity if decision and same_figure else None,
        actual_intensity=actual,
        energy=reading,
        operational_g=operational_g,
        embodied_g=embodied_share(factors, reading.gpu_count, duration_s),
        functional_unit=settings.functional_unit,
        units=settings.units,
        counterfactual_intensity=cf_intensity,
        counterfactual_g=cf_grams,
        fallback=_fallback(decision, history, same_figure),
        history=history,
        embodied=factors,
    )


def _fallback(decision: Decision | None, history: Forecast | None, same_figure: bool) -> str | None:
    """What stood in for what, in words: the deciding chain's fallback, the history's (or the
    forecast standing in for one), a history from another source or signal than the decision,
    and the history's own warnings (UK regional history is forecast-only)."""
    notes: list[str] = []
    for note in (decision.fallback if decision else None, history.fallback if history else None):
        if note and note not in notes:
            notes.append(note)
    if decision is not None and history is not None and not same_figure:
        decided = ":".join(part for part in (decision.provider, decision.region) if part)
        notes.append(
            f"decided on {decided or 'no source'} ({decision.signal or 'no signal'}); "
            f"figures from {history.source} ({history.signal}), forecast_intensity left out"
        )
    notes.extend(w for w in (history.warnings if history else ()) if w not in notes)
    return "; ".join(notes) or None


def _source(decision: Decision | None, history: Forecast | None) -> tuple[str, str, Signal]:
    """Provider, region and signal: the deciding source's, else the history's."""
    if decision is not None and decision.provider:
        return decision.provider, decision.region or "", decision.signal or Signal.AVERAGE
    if history is not None:
        return provider_of(history.source), history.region, history.signal
    return "", "", Signal.AVERAGE


def intensity_history(
    source: IntensitySource | None, job: Job, end: datetime, last_forecast: Forecast | None
) -> Forecast | None:
    """What the grid was from the job's submission to ``end``: the run and its
    counterfactual. When the source cannot say, the last forecast seen (logged)."""
    if source is None:
        return forecast_as_history(last_forecast, "no source")
    stop = max(end, job.submitted_at + timedelta(seconds=1))
    try:
        return source.history(job.submitted_at, stop)
    except ProviderError as exc:
        logger.warning("no intensity history for job %s (%s); using the last forecast", job.id, exc)
        return forecast_as_history(last_forecast, str(exc))


def forecast_as_history(forecast: Forecast | None, why: str) -> Forecast | None:
    """``forecast`` standing in for a history nobody could give, marked so: its ``fallback``
    reaches the row, which must never present a forecast as what the grid really did."""
    if forecast is None:
        return None
    note = f"forecast {forecast.source} as actual (history: {why})"
    fallback = f"{forecast.fallback}; {note}" if forecast.fallback else note
    return replace(forecast, fallback=fallback, forecast_only=True)


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
    if history.start - submitted_at > history.step:
        # A history (or a later forecast standing in) that begins well after the submission
        # cannot say what the grid was then; stretching its first value back would invent it.
        logger.warning(
            "no counterfactual for the run: %s starts %s, after the submission at %s",
            history.source,
            history.start.isoformat(),
            submitted_at.isoformat(),
        )
        return None, None
    try:
        return counterfactual(reading, submitted_at, history)
    except ValueError as exc:
        logger.warning("no counterfactual for the run: %s", exc)
        return None, None
