"""What the daemon is built from: settings in, a store, an executor, sources and an engine out.

Both of the daemon's processes build from here: the API process its store, the loop process
(``greenai.daemon.loop``) its engine, so the two cannot be wired differently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from greenai.core.budgets import period_text
from greenai.core.domain import Decision
from greenai.core.errors import ConfigError
from greenai.core.settings import Settings
from greenai.core.time import Clock
from greenai.evidence.decisions import append_decision, append_decisions
from greenai.evidence.sci import append_row
from greenai.executors.base import Executor, parse_gpu_slots
from greenai.policies.flexible_fraction import with_flexible_fraction
from greenai.policies.registry import get_policy
from greenai.providers.base import IntensitySource
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.database import make_engine
from greenai.storage.env_cipher import EnvCipher
from greenai.storage.store import Store

DEFAULT_POLICY = "window"  # a daemon without GPU slots
FLEET_POLICY = "fleet"  # a daemon with GPU slots: the queue is planned onto them
log = logging.getLogger(__name__)


@dataclass
class EvidenceFiles:
    """Writes the SCI CSV and the decision log (docs/formats.md §4, §5)."""

    settings: Settings

    def record_decision(self, decision: Decision) -> None:
        append_decision(self.settings.decision_log_path, decision)

    def record_decisions(self, lines: Sequence[str]) -> None:
        append_decisions(self.settings.decision_log_path, lines)

    def record_run(self, row: Mapping[str, Any], *, unless_present: bool = False) -> bool:
        return append_row(self.settings.evidence_path, row, unless_present=unless_present)


def default_sources(settings: Settings, clock: Clock) -> Callable[[str], IntensitySource]:
    """One fallback chain per provider spec, built on first use."""
    from greenai.providers.fallback import build_chain

    @cache
    def source_for(spec: str) -> IntensitySource:
        return build_chain(spec, settings, clock=clock)

    return source_for


def _local_executor(settings: Settings, clock: Clock) -> Executor:
    from greenai.executors.local import LocalExecutor
    from greenai.meters.config import MeterConfig

    meters = MeterConfig.from_settings(settings)
    return LocalExecutor(meters, clock, env_allow=settings.job_env_allow)


def _slurm_executor(settings: Settings, clock: Clock) -> Executor:
    from greenai.executors.local import parse_env_allow
    from greenai.executors.slurm import SlurmExecutor
    from greenai.executors.slurm_settings import SlurmSettings

    allow = parse_env_allow(settings.job_env_allow)
    return SlurmExecutor(SlurmSettings.from_env(), env_allow=allow)


def _kubernetes_executor(settings: Settings, clock: Clock) -> Executor:
    from greenai.executors.kubernetes import from_environment

    return from_environment(os.environ, clock)  # its own GREENAI_K8S_* settings


def check_local_meters(settings: Settings, slots: Sequence[int], clock: Clock) -> None:
    """``ConfigError`` when the meters the settings name cannot measure this host's jobs
    (on its GPU ``slots``): the daemon refuses to start, as ``greenai run`` does."""
    from greenai.meters.composite import check_meters
    from greenai.meters.config import MeterConfig

    check_meters(MeterConfig.from_settings(settings), list(slots) or None, clock)


# The executors `--executor` can name; Slurm and Kubernetes join here.
EXECUTORS: dict[str, Callable[[Settings, Clock], Executor]] = {"local": _local_executor}
EXECUTORS["kubernetes"] = _kubernetes_executor
EXECUTORS["slurm"] = _slurm_executor


def check_executor(settings: Settings) -> Callable[[Settings, Clock], Executor]:
    """The factory of the executor the settings name, or a ``ConfigError`` naming the choices."""
    factory = EXECUTORS.get(settings.executor)
    if factory is None:
        known = ", ".join(sorted(EXECUTORS))
        raise ConfigError(f"executor: unknown {settings.executor!r} (choose from {known})")
    return factory


def build_executor(settings: Settings, clock: Clock) -> Executor:
    return check_executor(settings)(settings, clock)


def daemon_policy(settings: Settings) -> str:
    """The policy jobs get when they name none: ``fleet`` when the daemon has GPU slots to
    plan onto (flexible jobs planned one by one would all chase the same clean hours and
    overflow them), else ``window``. It must plan from forecasts, and a threshold policy
    needs a threshold."""
    name = settings.policy or (
        FLEET_POLICY if parse_gpu_slots(settings.gpu_slots) else DEFAULT_POLICY
    )
    with_flexible_fraction(get_policy(name, online=True), settings.max_flexible_fraction)
    if name == "threshold" and settings.threshold is None:
        raise ConfigError("threshold: the threshold policy needs GREENAI_THRESHOLD (gCO2/kWh)")
    return name


def open_store(settings: Settings, *, checkpoints: bool = True) -> Store:
    """The durable queue the settings name (SQLite in the home by default), job envs sealed
    with the key file's keys (created on first use; replicas share it). ``checkpoints=False``:
    another process of this daemon (its loop) checkpoints SQLite's log."""
    cipher = EnvCipher.from_key_file(settings.env_key_path)
    engine = make_engine(settings.resolved_database_url, checkpoints=checkpoints)
    return Store(engine, env_cipher=cipher)


def store_budgets(store: Store, settings: Settings, now: datetime) -> None:
    """The settings' budgets, written at start: the settings say what holds after a restart
    (a ``PUT /budgets/{project}`` holds until then); a budget whose period is unchanged keeps
    its periods' start."""
    for project, spec in settings.budgets.items():
        store.put_budget(project, spec.kg * 1000, spec.period, now)
        log.info("budget of project %s: %g kg per %s", project, spec.kg, period_text(spec.period))


def build_engine(
    settings: Settings,
    clock: Clock,
    store: Store | None = None,
    executor: Executor | None = None,
    source_for: Callable[[str], IntensitySource] | None = None,
) -> Engine:
    """The re-planning loop's body as the settings describe it; seams are injectable."""
    return Engine(
        store or open_store(settings),
        executor or build_executor(settings, clock),
        EngineConfig(
            parse_gpu_slots(settings.gpu_slots),
            settings.home / "runs",
            default_provider=settings.provider,
            policy=daemon_policy(settings),
            threshold=settings.threshold,
            retry_budget=settings.retry_budget,
            background_fetch=True,
            grace_s=settings.grace_seconds,
            pause_signal=settings.pause_signum,
            pause_grace_s=settings.pause_grace_seconds,
            log_max_bytes=settings.log_max_bytes,
            log_backups=settings.log_backups,
            settings=settings,
        ),
        source_for=source_for or default_sources(settings, clock),
        evidence=EvidenceFiles(settings),
    )
