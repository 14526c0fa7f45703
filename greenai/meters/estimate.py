"""The estimate meter: declared power, or a rough TDP model, times the run's clock time.

Used only when nothing can measure (or when asked for by name). It is a model, not a
measurement, and every reading says so in its notes and with meter ``estimate``. Time is the
injected clock's: on a replayed trace (``--trace-speed``) a run of 2 wall seconds at 1800x is an
hour of modelled draw, as every other duration of that run is trace time.

Without a declared ``power_watts`` the model is: ``GPU_WATTS`` per GPU (a mid-range data-centre
GPU board under load: T4 70 W, V100 300 W, A100 400 W, H100 SXM 700 W) plus a host of
``HOST_BASE_WATTS`` + ``WATTS_PER_CPU_THREAD`` per logical CPU. Declare ``--power-watts`` for
anything better.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime

from greenai.core.domain import EnergyReading
from greenai.core.time import Clock
from greenai.meters.base import joules_to_kwh

logger = logging.getLogger(__name__)

GPU_WATTS = 300.0
HOST_BASE_WATTS = 50.0
WATTS_PER_CPU_THREAD = 4.0


@dataclass(frozen=True, slots=True)
class PowerModel:
    """What the estimate charges: a declared draw for the whole job, else the TDP model."""

    power_watts: float | None = None
    gpu_count: int = 0
    cpu_threads: int = field(default_factory=lambda: os.cpu_count() or 1)

    def watts(self) -> tuple[float, float]:
        """``(gpu_watts, host_watts)``."""
        if self.power_watts is not None:
            if self.gpu_count:
                return self.power_watts, 0.0
            return 0.0, self.power_watts
        host = HOST_BASE_WATTS + WATTS_PER_CPU_THREAD * self.cpu_threads
        return GPU_WATTS * self.gpu_count, host

    def reading(self, started_at: datetime, finished_at: datetime, why: str = "") -> EnergyReading:
        """The modelled energy of a run from ``started_at`` to ``finished_at``; ``why`` says
        why an estimate stands in (put before the model's own note)."""
        seconds = max(0.0, (finished_at - started_at).total_seconds())
        gpu_w, host_w = self.watts()
        gpu_kwh, cpu_kwh = joules_to_kwh(gpu_w * seconds), joules_to_kwh(host_w * seconds)
        note = self._note(gpu_w, host_w)
        return EnergyReading(
            started_at=started_at,
            finished_at=finished_at,
            cpu_kwh=cpu_kwh,
            gpu_kwh=gpu_kwh,
            meter="estimate",
            gpu_count=self.gpu_count,
            notes=(f"{why}: {note}" if why else note,),
            samples=((started_at, 0.0), (finished_at, gpu_kwh + cpu_kwh)),
        )

    def _note(self, gpu_w: float, host_w: float) -> str:
        if self.power_watts is not None:
            where = "gpu_kwh" if self.gpu_count else "cpu_kwh"
            return (
                f"estimate, not a measurement: declared {self.power_watts:g} W for the whole "
                f"job, booked as {where}"
            )
        return (
            f"estimate, not a measurement: TDP model {gpu_w:g} W for {self.gpu_count} GPU(s) "
            f"+ {host_w:g} W host ({self.cpu_threads} CPU threads)"
        )


@dataclass(frozen=True)
class _EstimateRun:
    started_at: datetime


class EstimateMeter:
    """Energy = watts x clock seconds; ``power_watts`` declared, else the TDP model."""

    def __init__(
        self,
        clock: Clock,
        *,
        power_watts: float | None = None,
        gpu_count: int = 0,
        cpu_threads: int | None = None,
    ) -> None:
        self.clock = clock
        self.name = "estimate"
        threads = cpu_threads if cpu_threads is not None else (os.cpu_count() or 1)
        self.model = PowerModel(power_watts, gpu_count, threads)

    @property
    def power_watts(self) -> float | None:
        return self.model.power_watts

    @property
    def gpu_count(self) -> int:
        return self.model.gpu_count

    @property
    def cpu_threads(self) -> int:
        return self.model.cpu_threads

    def watts(self) -> tuple[float, float]:
        """``(gpu_watts, host_watts)`` the estimate charges."""
        return self.model.watts()

    def start(self) -> _EstimateRun:
        return _EstimateRun(self.clock.now())

    def power_now(self, token: _EstimateRun) -> float:
        """The draw the estimate charges, all the run long (W)."""
        return sum(self.watts())

    def stop(self, token: _EstimateRun) -> EnergyReading:
        return self.model.reading(token.started_at, self.clock.now())
