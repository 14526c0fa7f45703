"""CPU and RAM energy from CodeCarbon's *offline* tracker.

Only ``OfflineEmissionsTracker(country_iso_code=...)`` is used: the online tracker looks the
location up on the internet and silently assumes a default country when that fails. Its GPU
tracking is switched off (``gpu_ids=[]``; NVML is greenai's GPU meter, so nothing is counted
twice), it writes no files (``output_methods=[]``), logs only errors, and is allowed to run
beside other instances (``allow_multiple_runs=True``), which also keeps it from installing its
own SIGINT/SIGTERM handlers. CodeCarbon measures the whole machine ("machine" tracking mode)
and its CPU figure is a RAPL measurement where RAPL is readable, else a TDP x load model; RAM
is always a power-per-GB model. The reading's notes say which (``method_notes``), so a
modelled figure never reads like a measurement.

The tracker factory is a parameter so tests can replace CodeCarbon at its boundary.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from greenai.core.domain import EnergyReading
from greenai.core.errors import MeterUnavailable
from greenai.core.time import Clock

logger = logging.getLogger(__name__)


class EmissionsTracker(Protocol):
    """What greenai uses of a CodeCarbon tracker; after ``stop`` its
    ``final_emissions_data`` holds ``cpu_energy`` and ``ram_energy`` (kWh)."""

    def start(self) -> None: ...

    def stop(self) -> float | None: ...


TrackerFactory = Callable[[], EmissionsTracker]


def offline_tracker_factory(
    country_iso_code: str, measure_power_secs: float = 15.0
) -> TrackerFactory:
    """A factory of quiet, GPU-less, file-less offline trackers for ``country_iso_code``."""

    def build() -> EmissionsTracker:
        from codecarbon import OfflineEmissionsTracker

        # CodeCarbon sets its logger's level when imported; quieten it before it logs its
        # start-up banner.
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        # Its constructor is wrapped in a blanket exception suppressor: a warning turned into
        # an error (pytest's filterwarnings=error) would leave a half-built tracker without a
        # word. Record its warnings instead and pass them on to our log.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tracker = OfflineEmissionsTracker(
                country_iso_code=country_iso_code,
                gpu_ids=[],
                output_methods=[],
                log_level="error",
                measure_power_secs=measure_power_secs,
                allow_multiple_runs=True,
                tracking_mode="machine",
            )
        for warning in caught:
            logger.debug("codecarbon warned: %s", warning.message)
        return tracker

    return build


@dataclass
class _CodecarbonRun:
    tracker: EmissionsTracker
    started_at: datetime


class CodecarbonMeter:
    """CPU + RAM energy of the machine during a run, via an injected tracker factory."""

    def __init__(self, clock: Clock, tracker_factory: TrackerFactory) -> None:
        self.clock = clock
        self.name = "codecarbon"
        self._factory = tracker_factory

    def start(self) -> _CodecarbonRun:
        try:
            tracker = self._factory()
            tracker.start()
        except Exception as exc:  # CodeCarbon raises anything from its hardware probes
            raise MeterUnavailable(f"codecarbon: cannot start the offline tracker: {exc}") from exc
        return _CodecarbonRun(tracker, self.clock.now())

    def stop(self, token: _CodecarbonRun) -> EnergyReading:
        try:
            token.tracker.stop()
        except Exception as exc:
            raise MeterUnavailable(f"codecarbon: tracker failed at stop: {exc}") from exc
        data = getattr(token.tracker, "final_emissions_data", None)
        if data is None:
            raise MeterUnavailable("codecarbon: the tracker returned no energy data")
        return EnergyReading(
            started_at=token.started_at,
            finished_at=self.clock.now(),
            cpu_kwh=float(data.cpu_energy),
            ram_kwh=float(data.ram_energy),
            meter="codecarbon",
            notes=_method_note(token.tracker, data),
        )


def _method_note(tracker: EmissionsTracker, data: Any) -> tuple[str, ...]:
    # CodeCarbon names its methods only in its private config ("CPU(Intel Rapl)",
    # "CPU(Cpu Load)", "RAM()"); it is read for the notes and nothing else.
    conf = getattr(tracker, "_conf", None)
    hardware = conf.get("hardware") if isinstance(conf, dict) else None
    cpu_model = getattr(data, "cpu_model", "") or "unknown CPU"
    return method_notes([str(h) for h in hardware or ()], cpu_model)


MEASURED_CPU = ("CPU(Intel Rapl)", "CPU(Intel Power Gadget)", "CPU(Windows Emi)")
# no "modelled" in the RAM note: "modelled" + "CodeCarbon" marks a modelled CPU figure
# (greenai.evidence.provenance), and RAM is modelled whatever the CPU method
RAM_NOTE = "ram_kwh from CodeCarbon's power-per-GB model of the installed RAM, not measured"


def method_notes(hardware: Sequence[str], cpu_model: str = "unknown CPU") -> tuple[str, ...]:
    """What the row's CPU and RAM figures are, from CodeCarbon's hardware descriptions: its
    CPU figure is a measurement only from energy counters (RAPL, Power Gadget, Windows EMI);
    ``CPU(Cpu Load)`` is TDP x load, ``CPU(<model> > <TDP>W)`` a constant share of the TDP."""
    cpu = next((h for h in hardware if h.startswith("CPU(")), None)
    if cpu in MEASURED_CPU:
        how = f"cpu_kwh measured by CodeCarbon from the CPU's energy counters ({cpu})"
    elif cpu == "CPU(Cpu Load)":
        how = "cpu_kwh modelled by CodeCarbon (TDP x load), not measured"
    elif cpu is not None and " > " in cpu:
        how = f"cpu_kwh modelled by CodeCarbon (a constant share of the TDP, {cpu}), not measured"
    else:
        how = f"cpu_kwh: CodeCarbon did not say how ({cpu or 'no CPU method'}); take it as modelled"
    return (f"codecarbon: whole machine ({cpu_model})", how, RAM_NOTE)
