"""Builders and fakes shared by the daemon tests."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from greenai.core.domain import Decision, Forecast, Job, JobState, OnDeadline, Signal
from greenai.core.errors import ProviderError
from greenai.storage.records import RunSummary, Submission, WaitingJobs

T0 = datetime(2023, 5, 4, 12, 0, tzinfo=UTC)


def job(
    job_id: str | None = None,
    *,
    name: str = "train",
    argv: tuple[str, ...] = ("true",),
    submitted_at: datetime = T0,
    duration: timedelta = timedelta(hours=1),
    deadline: datetime | None = None,
    **fields: Any,
) -> Job:
    """A ``Job`` with a fresh uuid (unless ``job_id`` is given), due 12 hours after
    submission; ``fields`` are the other ``Job`` fields (gpus, policy, env, ...)."""
    return Job(
        job_id or str(uuid.uuid4()),
        submitted_at,
        duration,
        deadline or submitted_at + timedelta(hours=12),
        name=name,
        command=argv,
        **fields,
    )


def new_job(
    name: str = "train",
    argv: tuple[str, ...] = ("true",),
    submitted_at: datetime = T0,
    duration: timedelta = timedelta(hours=1),
    deadline: datetime | None = None,
    idempotency_key: str | None = None,
    **fields: Any,
) -> Submission:
    """A ``Submission`` of ``job(...)``, as the API or the CLI hands one to the store."""
    built = job(
        fields.pop("job_id", None),
        name=name,
        argv=argv,
        submitted_at=submitted_at,
        duration=duration,
        deadline=deadline,
        **fields,
    )
    return Submission(built, idempotency_key)


def every_field_job(**changes: Any) -> Job:
    """A job with every field set away from its default (text outside ASCII included), to
    check that a job comes back from wherever it was stored exactly as it went in."""
    fields: dict[str, Any] = {
        "name": "fine-tune ü",
        "argv": ("python", "train.py", "--lr", "0.1"),
        "gpus": 2,
        "interruptible": True,
        "flexible": False,
        "power_kw": 0.35,
        "policy": "threshold",
        "threshold": 120.5,
        "provider": "uk:13,egrid:RFCE",
        "project": "nlp",
        "on_deadline": OnDeadline.EXPIRE,
        "cwd": "/srv/runs/a b",
        "env": {"A": "1", "GREETING": "héllo wörld"},
        "max_runtime": timedelta(hours=2, milliseconds=500),
        "pause_signal": "SIGUSR1",
        "pause_grace": timedelta(minutes=2),
    }
    return job(**{**fields, **changes})


def waiting_columns(
    jobs: Sequence[Job],
    states: Sequence[JobState] | None = None,
    planned: Sequence[datetime | None] | None = None,
    planned_at: Sequence[datetime | None] | None = None,
) -> WaitingJobs:
    """What ``Store.waiting_for_plan`` reads of ``jobs`` (queued and unplanned by default)."""
    return WaitingJobs(
        ids=[j.id for j in jobs],
        states=list(states or [JobState.QUEUED] * len(jobs)),
        policies=[j.policy for j in jobs],
        thresholds=[j.threshold for j in jobs],
        providers=[j.provider for j in jobs],
        submitted=[j.submitted_at for j in jobs],
        deadlines=[j.deadline for j in jobs],
        durations=[j.duration.total_seconds() for j in jobs],
        interruptible=[j.interruptible for j in jobs],
        gpus=[j.gpus for j in jobs],
        flexible=[j.flexible for j in jobs],
        planned=list(planned or [None] * len(jobs)),
        projects=[j.project for j in jobs],
        power_kw=[j.power_kw for j in jobs],
        planned_at=list(planned_at or [None] * len(jobs)),
    )


def run_summary(job_id: str, run_id: str = "r1", **fields: Any) -> RunSummary:
    """A finished run of ``job_id``: one hour from T0, 2 kWh, with its SCI row's cells."""
    values: dict[str, Any] = {
        "attempt": 1,
        "started_at": T0,
        "finished_at": T0 + timedelta(hours=1),
        "exit_code": 0,
        "energy_kwh": 2.0,
        "meter": "fake",
        "evidence": {"run_id": run_id, "job_id": job_id, "energy_kwh": "2.0"},
        **fields,
    }
    return RunSummary(run_id, job_id, **values)


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def forecast(
    values: list[float], start: datetime = T0, step_minutes: int = 30, **kwargs: Any
) -> Forecast:
    return Forecast(
        start=start,
        step=timedelta(minutes=step_minutes),
        values=tuple(values),
        signal=Signal.AVERAGE,
        source=kwargs.pop("source", "fake:13"),
        region="13",
        issued_at=start,
        **kwargs,
    )


@dataclass
class FakeSource:
    """A provider chain answering with a given forecast, or failing."""

    answer: Forecast | None
    calls: list[datetime] = field(default_factory=list)

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast:
        self.calls.append(now)
        if self.answer is None:
            raise ProviderError("fake", "down")
        return self.answer

    def history(self, start: datetime, end: datetime) -> Forecast:
        if self.answer is None:
            raise ProviderError("fake", "down")
        return self.answer


@dataclass
class FakeEvidence:
    """An ``EvidenceSink`` in memory: decisions given whole, encoded decision lines (as the
    JSONL log would get them) and SCI rows (one per ``run_id`` when ``unless_present``)."""

    decisions: list[Decision] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    runs: list[dict[str, str]] = field(default_factory=list)

    def record_decision(self, decision: Decision) -> None:
        self.decisions.append(decision)

    def record_decisions(self, lines: Sequence[str]) -> None:
        self.lines.extend(lines)

    def record_run(self, row: Mapping[str, str], *, unless_present: bool = False) -> bool:
        if unless_present and any(seen["run_id"] == row["run_id"] for seen in self.runs):
            return False
        self.runs.append(dict(row))
        return True


__all__ = [
    "T0",
    "FakeEvidence",
    "FakeSource",
    "OnDeadline",
    "forecast",
    "job",
    "new_job",
    "python",
    "run_summary",
]


BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def benchmark(name: str) -> ModuleType:
    """`benchmarks/<name>.py`, loaded by path (benchmarks are scripts, not a package) and
    registered under ``name``, as the scripts import each other."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def crash_harness() -> ModuleType:
    """`benchmarks/crash_harness.py`."""
    return benchmark("crash_harness")
