"""A whole-machine meter (CodeCarbon, RAPL) that charges a job only its share of the host.

``HostShareMeter`` wraps the host meter and reads two CPU clocks at the edges of the run (after
the host meter starts, right before the command does; before it stops, right after the
command's exit): the machine's busy time from ``/proc/stat`` and the job's CPU time. The split
rule and its notes are ``host_share``'s.

The job's CPU time is ``getrusage(RUSAGE_CHILDREN)`` of the process that starts and reaps the
command (the per-job supervisor, or ``greenai run``), taken as a difference over the window.
The kernel adds a child's user+system time, and that of every descendant it waited for, when
the child is reaped, to the microsecond, so a job of many short processes is counted whole;
sampling ``/proc/<pid>`` instead misses whatever starts and ends between two samples and
anything still running in a process that is gone. What it does not see: a descendant that
escapes (daemonises and is never waited for) — the job is then under-charged, never charged
another job's time. It is right only where the command is the measuring process's one child,
so it is used only where ``build_meter`` is given ``job_cpu`` (never in the daemon, which
starts every job's supervisor).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenai.core.domain import EnergyReading
from greenai.meters.base import Meter
from greenai.meters.host_share import busy_ticks, charge_share, charge_whole_host, cpu_share

PROC_STAT = Path("/proc/stat")

CpuClock = Callable[[], float]  # CPU seconds so far; OSError or ValueError when unreadable


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's reaped children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds(path: Path = PROC_STAT) -> float:
    """Busy CPU seconds of the whole machine since boot, summed over its CPUs."""
    return busy_ticks(path.read_text(encoding="ascii")) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class _Clocks:
    job_s: float
    busy_s: float


@dataclass
class _SharedRun:
    inner: Any
    start: _Clocks | None
    problem: str = ""

    def counters(self) -> dict[str, int]:
        """The wrapped meter's raw counters (``CompositeMeter.counters`` reads them)."""
        read = getattr(self.inner, "counters", None)
        return dict(read() or {}) if callable(read) else {}


class HostShareMeter:
    """``inner`` (a whole-machine meter) charging its readings by ``host_share``'s rule."""

    def __init__(
        self,
        inner: Meter,
        *,
        job_cpu: CpuClock = children_cpu_seconds,
        machine_busy: CpuClock = machine_busy_seconds,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._job_cpu, self._machine_busy = job_cpu, machine_busy

    def start(self) -> _SharedRun:
        token = self.inner.start()
        clocks, problem = self._read()
        return _SharedRun(token, clocks, problem)

    def stop(self, token: _SharedRun) -> EnergyReading:
        end, problem = self._read()
        reading = self.inner.stop(token.inner)
        if token.start is None or end is None:
            return charge_whole_host(reading, token.problem or problem)
        job_s = end.job_s - token.start.job_s
        busy_s = end.busy_s - token.start.busy_s
        share = cpu_share(job_s, busy_s)
        if share is None:
            why = f"{busy_s:.2f} busy CPU-s and {job_s:.2f} job CPU-s in the run window"
            return charge_whole_host(reading, why)
        return charge_share(reading, share, job_s, busy_s)

    def _read(self) -> tuple[_Clocks | None, str]:
        try:
            return _Clocks(self._job_cpu(), self._machine_busy()), ""
        except (OSError, ValueError) as exc:
            return None, f"CPU times unreadable: {exc}"
