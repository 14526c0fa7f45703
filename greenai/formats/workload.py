"""Workload files (docs/formats.md §2): one job per row, read into ``Job``.

A job may run anywhere in ``[submit, submit + max_delay + duration]``; that end is its
deadline. Every defect is an ``InputError`` naming the file, the line and the field, because a
silently defaulted typo (``interruptable``) would quietly change what a benchmark measures.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from greenai.core.domain import Job
from greenai.core.errors import InputError
from greenai.core.time import parse_time

REQUIRED = ("id", "submit", "duration_min", "max_delay_min", "power_kw")
OPTIONAL = ("interruptible", "gpus", "flexible")


@dataclass(frozen=True, slots=True)
class WorkloadRow:
    """A job and the line it came from, so later checks (e.g. against a trace) can name it."""

    line: int
    job: Job


def load_workload(path: str | Path) -> list[Job]:
    """The jobs of a workload file, in file order."""
    return [row.job for row in read_workload(path)]


def read_workload(path: str | Path) -> list[WorkloadRow]:
    """Like ``load_workload`` but keeps each job's line number."""
    where = str(path)
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            _check_header(where, header)
            rows = [
                WorkloadRow(number, _job(where, number, _fields(where, number, header, cells)))
                for number, cells in enumerate(reader, start=2)
                if any(cell.strip() for cell in cells)
            ]
    except OSError as exc:
        raise InputError(where, None, f"cannot read workload: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(where, None, "not UTF-8 text") from exc
    _check_unique(where, rows)
    return rows


def _check_header(where: str, header: list[str]) -> None:
    if not header:
        raise InputError(where, 1, "empty file: expected a header line")
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InputError(where, 1, f"missing column(s): {', '.join(missing)}")
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if unknown:
        raise InputError(where, 1, f"unknown column(s): {', '.join(unknown)}")
    if len(set(header)) != len(header):
        raise InputError(where, 1, "a column appears twice")


def _fields(where: str, line: int, header: list[str], cells: list[str]) -> dict[str, str]:
    if len(cells) != len(header):
        raise InputError(where, line, f"expected {len(header)} fields, got {len(cells)}")
    return dict(zip(header, cells, strict=True))


def _job(where: str, line: int, row: dict[str, str]) -> Job:
    job_id = row["id"].strip()
    if not job_id:
        raise InputError(where, line, "empty id")
    try:
        submit = parse_time(row["submit"])
    except ValueError as exc:
        raise InputError(where, line, f"submit {row['submit']!r} is not ISO-8601") from exc
    duration = _number(where, line, row, "duration_min", positive=True)
    max_delay = _number(where, line, row, "max_delay_min")
    return Job(
        job_id,
        submit,
        timedelta(minutes=duration),
        submit + timedelta(minutes=max_delay + duration),
        name=job_id,
        power_kw=_number(where, line, row, "power_kw"),
        interruptible=_flag(where, line, row, "interruptible", default=False),
        gpus=_count(where, line, row),
        flexible=_flag(where, line, row, "flexible", default=True),
    )


def _number(
    where: str, line: int, row: dict[str, str], field: str, positive: bool = False
) -> float:
    text = row[field].strip()
    try:
        value = float(text)
    except ValueError as exc:
        raise InputError(where, line, f"{field} {text!r} is not a number") from exc
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        rule = "positive" if positive else "non-negative"
        raise InputError(where, line, f"{field} {text!r} must be finite and {rule}")
    return value


def _flag(where: str, line: int, row: dict[str, str], field: str, default: bool) -> bool:
    text = row.get(field, "").strip()
    if not text:
        return default
    if text not in ("0", "1"):
        raise InputError(where, line, f"{field} {text!r} must be 0 or 1")
    return text == "1"


def _count(where: str, line: int, row: dict[str, str]) -> int:
    text = row.get("gpus", "").strip()
    if not text:
        return 1
    if not text.isdigit() or int(text) < 1:
        raise InputError(where, line, f"gpus {text!r} must be a whole number >= 1")
    return int(text)


def _check_unique(where: str, rows: list[WorkloadRow]) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        if row.job.id in seen:
            first = seen[row.job.id]
            raise InputError(
                where, row.line, f"duplicate id {row.job.id!r} (first on line {first})"
            )
        seen[row.job.id] = row.line


def write_workload(path: str | Path, jobs: list[Job]) -> None:
    """Write jobs in the §2 layout (used by benchmarks to build seeded workloads)."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(REQUIRED + OPTIONAL)
        for job in jobs:
            duration = job.duration.total_seconds() / 60
            delay = (job.deadline - job.submitted_at).total_seconds() / 60 - duration
            writer.writerow(
                [
                    job.id,
                    job.submitted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    f"{duration:g}",
                    f"{delay:g}",
                    f"{job.power_kw:g}",
                    int(job.interruptible),
                    job.gpus,
                    int(job.flexible),
                ]
            )
