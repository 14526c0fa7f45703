"""Composition for one-shot use (`greenai run`, `greenai intensity`, `greenai.should_run`):
settings -> clock, intensity sources, meter and evidence sinks.

Kept apart from the Typer functions so the commands stay a page long and the Python API and the
tests build exactly the session the CLI builds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from greenai.core.domain import Job, RunRecord
from greenai.core.errors import ConfigError
from greenai.core.settings import Settings, load_settings
from greenai.core.time import Clock, parse_duration
from greenai.evidence.decisions import append_decision
from greenai.evidence.sci import append_run
from greenai.meters import build_meter
from greenai.meters.config import MeterConfig
from greenai.meters.gpu_share import JobProcesses
from greenai.meters.shared_host import children_cpu_seconds
from greenai.oneshot.flow import OneShot, OneShotDeps, new_job_id
from greenai.policies.registry import get_policy
from greenai.providers import build_chain
from greenai.providers.clock import build_clock, parse_time_setting


@dataclass
class Session:
    settings: Settings
    clock: Clock
    deps: OneShotDeps


def settings_from_flags(config: Path | None, **flags: Any) -> Settings:
    """Settings with the flags a user typed laid over env and greenai.toml."""
    return load_settings(config_file=config, **flags)


DEFAULT_POLICY = "threshold"
MAX_RUNTIME = timedelta(days=366)  # the longest the API accepts too


def build_oneshot(
    settings: Settings,
    now: datetime,
    argv: Sequence[str] = (),
    job_name: str | None = None,
    max_runtime: str | None = None,
) -> OneShot:
    """The job `greenai run` was asked to run, and the policy it waits with; ``max_runtime``
    (e.g. ``2h``) stops the command that long after it starts."""
    policy = get_policy(settings.policy or DEFAULT_POLICY, online=True)
    duration = _parse_duration_setting("duration", settings.duration)
    deadline = parse_time_setting("deadline", settings.deadline) if settings.deadline else None
    if deadline is not None and deadline <= now:
        raise ConfigError(f"deadline: {settings.deadline} is not in the future")
    if policy.name == "threshold" and settings.threshold is None:
        raise ConfigError("threshold: the threshold policy needs --threshold (gCO2/kWh)")
    if policy.needs_duration and duration is None:
        raise ConfigError(f"duration: the {policy.name} policy needs --duration (e.g. 2h)")
    if duration is not None and duration <= timedelta(0):
        raise ConfigError("duration: must be positive")
    length = duration or timedelta(0)
    budget = timedelta(seconds=settings.defer_seconds)
    job = Job(
        new_job_id(),
        now,
        length,
        deadline or now + budget + length,
        name=job_name or _default_job_name(argv),
        command=tuple(argv),
        policy=policy.name,
        threshold=settings.threshold,
        provider=settings.provider,
        max_runtime=_parse_max_runtime(max_runtime),
    )
    return OneShot(job, policy, timedelta(seconds=settings.check_interval))


def _default_job_name(argv: Sequence[str]) -> str:
    first = argv[0].split()[0] if argv else "job"
    return first.rsplit("/", 1)[-1]


def build_session(settings: Settings) -> Session:
    clock = build_clock(settings)
    source = build_chain(settings.provider, settings, clock=clock) if settings.provider else None
    gpus = _parse_gpus(settings.gpus)
    job_processes = JobProcesses()
    meter = build_meter(
        MeterConfig.from_settings(settings),
        gpus,
        clock,
        env=os.environ,
        job_cpu=children_cpu_seconds,  # the command is greenai run's one child
        job=job_processes,
    )
    deps = OneShotDeps(
        source=source,
        clock=clock,
        meter=meter,
        meter_notes=meter.notes_at_start(),
        settings=settings,
        record_decision=partial(append_decision, settings.decision_log_path),
        record_run=partial(append_run, settings.evidence_path),
        horizon=timedelta(hours=settings.horizon_hours),
        require_signal=settings.require_signal,
        job_processes=job_processes,
    )
    return Session(settings=settings, clock=clock, deps=deps)


def summary_line(record: RunRecord, evidence: Path) -> str:
    saved = (
        ""
        if record.counterfactual_g is None
        else (f", {record.counterfactual_g - record.operational_g:+.1f} g saved vs submit time")
    )
    actual = "n/a" if record.actual_intensity is None else f"{record.actual_intensity:.1f}"
    energy = record.energy.energy_kwh
    kwh = f"{energy:.4f} kWh" if math.isfinite(energy) else "energy not measured"
    grams = f"{record.operational_g:.1f}" if math.isfinite(record.operational_g) else "n/a"
    return (
        f"greenai: exit {record.exit_code}; {record.duration_s:.0f} s; "
        f"{kwh} ({record.energy.meter}); "
        f"{grams} gCO2 at {actual} g/kWh{saved}; evidence: {evidence}"
    )


def _parse_gpus(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"gpus: {text!r} is not a list of GPU indices like 0,1") from exc


def _parse_duration_setting(field: str, text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from exc


def _parse_max_runtime(text: str | None) -> timedelta | None:
    """``--max-runtime``: a duration as ``--duration`` takes it, positive, at most 366 days."""
    try:
        limit = _parse_duration_setting("max_runtime", text)
    except OverflowError:
        raise ConfigError(f"max_runtime: {text!r} is too long (at most 366 days)") from None
    if limit is not None and limit <= timedelta(0):
        raise ConfigError("max_runtime: must be positive")
    if limit is not None and limit > MAX_RUNTIME:
        raise ConfigError(f"max_runtime: {text!r} is too long (at most 366 days)")
    return limit


__all__ = ["Session", "build_oneshot", "build_session", "settings_from_flags", "summary_line"]
