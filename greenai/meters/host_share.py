"""A job's share of the host's CPU and RAM energy: the arithmetic, with no I/O.

CodeCarbon and RAPL measure the whole machine, so two jobs running side by side would each be
charged the whole host. The rule stated here splits it:

- **CPU**: the job is charged ``share = job CPU seconds / machine busy CPU seconds`` of the
  host's CPU energy over its run window (busy = every CPU's non-idle time, from ``/proc/stat``
  at meter start and stop; the job's CPU time is its process tree's, see ``shared_host``).
  Busy time, not wall time x cores: the energy above idle follows the work done, and an idle
  machine's base draw goes to whoever keeps it awake.
- **RAM**: the same share. CodeCarbon models RAM power from installed GB, not from use, so
  there is no per-job figure to split by; the CPU-time share is the stated proxy.
- **Fallback**: when the share cannot be determined (no ``/proc/stat``, no busy time in the
  window), the job is charged the whole host, and its note says so.

Every reading says which rule applied in its ``notes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from greenai.core.domain import EnergyReading

# /proc/stat "cpu" columns: user nice system idle iowait irq softirq steal guest guest_nice.
# guest time is already counted in user (and guest_nice in nice), so it is left out here.
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal


def busy_ticks(proc_stat: str) -> int:
    """The machine's busy CPU time so far, in clock ticks, from the text of ``/proc/stat``
    (its aggregate ``cpu`` line); ``ValueError`` when there is none."""
    for line in proc_stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            counts = [int(value) for value in fields[1:]]
            if len(counts) < 4:
                raise ValueError("/proc/stat: the cpu line has fewer than 4 columns")
            return sum(counts[i] for i in _BUSY_COLUMNS if i < len(counts))
    raise ValueError("/proc/stat: no aggregate cpu line")


def cpu_share(job_cpu_s: float, machine_busy_s: float) -> float | None:
    """The job's share of the machine's busy CPU time, in [0, 1]; ``None`` when it cannot be
    told (no busy time in the window, or a negative figure: a counter that went back).
    Above 1 is clamped: rusage counts to the microsecond, ``/proc/stat`` to the tick."""
    if machine_busy_s <= 0 or job_cpu_s < 0:
        return None
    return min(1.0, job_cpu_s / machine_busy_s)


def charge_share(
    reading: EnergyReading, share: float, job_cpu_s: float, machine_busy_s: float
) -> EnergyReading:
    """The host reading with only ``share`` of its CPU and RAM energy (and timeline) kept."""
    note = (
        f"host CPU/RAM energy split by CPU-time share: this job {share:.0%} of the machine's "
        f"busy CPU time ({job_cpu_s:.2f} of {machine_busy_s:.2f} CPU-s); RAM in the same share"
    )
    return replace(
        reading,
        cpu_kwh=reading.cpu_kwh * share,
        ram_kwh=reading.ram_kwh * share,
        notes=(*reading.notes, note),
        samples=_scaled(reading.samples, share),
    )


def charge_whole_host(reading: EnergyReading, why: str) -> EnergyReading:
    """The host reading unchanged, with a note that the whole machine was charged and why."""
    note = (
        "host CPU/RAM energy of the whole machine charged to this job: its CPU-time share "
        f"could not be determined ({why})"
    )
    return replace(reading, notes=(*reading.notes, note))


def _scaled(
    samples: Sequence[tuple[datetime, float]], share: float
) -> tuple[tuple[datetime, float], ...]:
    return tuple((at, kwh * share) for at, kwh in samples)
