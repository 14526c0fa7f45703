"""Trace replay: a run's energy on the trace's time base, as its duration and embodied are.

Replaying a trace at ``--trace-speed 1800``, a job that runs 2 wall seconds lasts an hour of
trace time: its duration, its embodied share and the intensities it is weighed with are an
hour's. Its measured energy is 2 seconds' worth, so a row would mix time bases. The rule: a
measured part (NVML, CodeCarbon, RAPL) is scaled by the speed, i.e. the job is charged its
measured mean power over the trace-time duration. The estimate meter is already on the
clock's time (watts x clock seconds) and is left as it is. Every replayed reading says the
clock and the speed in a note, scaled or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from greenai.core.domain import EnergyReading
from greenai.core.time import Clock, ScaledClock

ON_CLOCK_TIME = frozenset({"estimate"})  # meters whose energy is already clock time


def replay_speed(clock: Clock) -> float | None:
    """The trace clock's speed (trace seconds per wall second), ``None`` on wall time."""
    return clock.speed if isinstance(clock, ScaledClock) else None


def to_trace_time(reading: EnergyReading, speed: float) -> EnergyReading:
    """A part's reading on trace time: measured energy (and its timeline) times ``speed``."""
    if reading.meter in ON_CLOCK_TIME:
        return reading
    return replace(
        reading,
        cpu_kwh=reading.cpu_kwh * speed,
        gpu_kwh=reading.gpu_kwh * speed,
        ram_kwh=reading.ram_kwh * speed,
        samples=tuple((at, kwh * speed) for at, kwh in reading.samples),
    )


def replay_note(speed: float, parts: Sequence[EnergyReading]) -> str:
    """What a replayed reading's time base is, and which parts were scaled to it."""
    scaled = [r.meter for r in parts if r.meter not in ON_CLOCK_TIME]
    how = (
        f"measured energy ({'+'.join(scaled)}) scaled x{speed:g} from wall to trace time"
        if scaled
        else "the estimate is already on trace time"
    )
    return (
        f"trace replay: the clock is trace time at {speed:g}x wall time; {how}, so energy, "
        "duration and embodied share one time base"
    )
