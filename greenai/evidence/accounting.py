"""Carbon accounting for one run: pure functions, no I/O, no clock.

Operational emissions are time-resolved: the run is cut at the intensity grid's boundaries,
the energy of each piece (from the meter's cumulative timeline, interpolated linearly, or
spread evenly over the run when there is no timeline) is charged at that piece's intensity,
and ``operational_g = sum(E_i x I_i)``. The counterfactual charges the same energy profile as
if the job had started at submit time.

Embodied emissions follow SCI's ``M = TE x (TiR / EL) x (RR / ToR)``: the hardware's total
embodied emissions, times the share of its lifetime the run reserved it, times the share of
the hardware the run used. The defaults in ``Settings`` are estimates, configurable, not facts:

- ``embodied_kg_per_gpu = 150`` kgCO2e: an estimate, the figure Luccioni, Viguier and Ligozat
  use per NVIDIA A100 in "Estimating the Carbon Footprint of BLOOM, a 176B Parameter Language
  Model" (JMLR 24(253), 2023, section 4.1; https://jmlr.org/papers/v24/23-0069.html,
  https://arxiv.org/abs/2211.02001). Their own derivation checks it: 150 kg over 6 years at
  85% use is 150 / (6 x 8760 x 0.85) = 0.0034 kg per GPU-hour, the "0.003 kg of CO2eq for
  each hour of GPU time" they state, and x 1.08 M GPU-hours the 3.64 t they report for the
  GPUs. Chien et al. (HotCarbon '23, https://doi.org/10.1145/3604930.3605705) put an A100
  with 1/8 of its host at ~318 kg; 150 + 1200 / 8 = 300 kg here is the same order. NVIDIA
  publishes product carbon footprint (PCF) summaries for its 8-GPU HGX boards
  (https://developer.nvidia.com/blog/nvidia-hgx-b200-reduces-embodied-carbon-emissions-intensity/);
  take the figure from your vendor's PCF where you can.
- ``embodied_kg_host = 1200`` kgCO2e: an estimate for a 2-socket server without its GPUs,
  between ARCHER2's ~1,100 kg (900-1,100) per 2-socket CPU node
  (https://github.com/ARCHER2-HPC/emissions-tools) and BLOOM's ~2,500 kg per 8-GPU server
  node (the 0.056 kg per server-hour of the same section x 6 years x 8760 h x 85%), a
  larger GPU server chassis. Dell publishes PCFs per server model
  (https://www.dell.com/en-us/dt/corporate/social-impact/advancing-sustainability/climate-action/product-carbon-footprints.htm).
- ``host_gpus = 8``: the host's share is split over the GPUs it carries; a CPU-only run is
  charged one GPU-equivalent share.
- ``hardware_lifetime_years = 4``: the usual amortisation period for servers and accelerators.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise

from greenai.core.domain import EmbodiedFactors, EnergyReading, Forecast
from greenai.core.settings import Settings
from greenai.meters.sampling import cumulative_at

logger = logging.getLogger(__name__)

SECONDS_PER_YEAR = 365.25 * 86400
Timeline = Sequence[tuple[datetime, float]]


def energy_timeline(reading: EnergyReading) -> list[tuple[datetime, float]]:
    """The run's cumulative energy over time, ending at exactly ``reading.energy_kwh``.

    The meter's samples give the shape; they are rescaled to the reading's total (a part
    without a timeline, such as CodeCarbon's CPU, is thereby spread like the rest). Without a
    usable shape the energy is spread evenly from ``started_at`` to ``finished_at``. An
    energy nobody measured raises ``ValueError``: it is not charged as 0.
    """
    total = reading.energy_kwh
    if not math.isfinite(total):
        raise ValueError(f"the run's energy was not measured (meter {reading.meter})")
    samples = sorted(reading.samples)
    if len(samples) >= 2 and samples[-1][1] > samples[0][1]:
        base, span = samples[0][1], samples[-1][1] - samples[0][1]
        return [(at, (value - base) / span * total) for at, value in samples]
    return [(reading.started_at, 0.0), (reading.finished_at, total)]


def charge(timeline: Timeline, history: Forecast) -> tuple[float, float]:
    """``(grams, intensity)`` of a cumulative energy timeline charged interval by interval.

    ``intensity`` is energy-weighted; with zero energy it is the time-weighted mean over the
    span (the value at its start for a zero-length span). Parts of the span outside
    ``history`` take the nearest interval's value (logged); a span that does not overlap
    ``history`` at all raises ``ValueError``.
    """
    start, end = timeline[0][0], timeline[-1][0]
    if end < history.start or start >= history.end:
        raise ValueError(
            f"{history.source}: intensity history {history.start.isoformat()}.."
            f"{history.end.isoformat()} does not cover {start.isoformat()}..{end.isoformat()}"
        )
    if start < history.start or end > history.end:
        logger.warning(
            "%s: run extends past the intensity history; edge values used", history.source
        )
    cuts = _cuts(start, end, history)
    grams = seconds = weighted_time = 0.0
    for a, b in pairwise(cuts):
        intensity = _value_near(history, a)
        grams += (cumulative_at(timeline, b) - cumulative_at(timeline, a)) * intensity
        width = (b - a).total_seconds()
        seconds += width
        weighted_time += width * intensity
    energy = timeline[-1][1] - timeline[0][1]
    if energy > 0:
        return grams, grams / energy
    mean = weighted_time / seconds if seconds > 0 else _value_near(history, start)
    return 0.0, mean


def time_resolved_intensity(reading: EnergyReading, history: Forecast) -> tuple[float, float]:
    """``(operational_g, actual_intensity)`` of the run as it really happened."""
    return charge(energy_timeline(reading), history)


def counterfactual(
    reading: EnergyReading, submitted_at: datetime, history: Forecast
) -> tuple[float, float]:
    """``(intensity, grams)`` had the same energy profile started at ``submitted_at``."""
    shift = submitted_at - reading.started_at
    grams, intensity = charge(_shifted(energy_timeline(reading), shift), history)
    return intensity, grams


def embodied_factors(settings: Settings) -> EmbodiedFactors:
    """The embodied settings a run is charged with, kept with its record."""
    return EmbodiedFactors(
        kg_per_gpu=settings.embodied_kg_per_gpu,
        kg_host=settings.embodied_kg_host,
        host_gpus=settings.host_gpus,
        lifetime_years=settings.hardware_lifetime_years,
    )


def embodied_grams(settings: Settings, gpu_count: int, duration_s: float) -> float:
    """SCI ``M`` in grams for hardware reserved ``duration_s`` by a run on ``gpu_count`` GPUs:
    the GPUs' embodied emissions plus the host's share (``gpu_count / host_gpus``, one GPU's
    share for a CPU-only run), amortised over ``hardware_lifetime_years``."""
    return embodied_share(embodied_factors(settings), gpu_count, duration_s)


def embodied_share(factors: EmbodiedFactors, gpu_count: int, duration_s: float) -> float:
    """``embodied_grams`` from the factors themselves."""
    share_of_host = (gpu_count if gpu_count > 0 else 1) / factors.host_gpus
    total_kg = factors.kg_per_gpu * gpu_count + factors.kg_host * share_of_host
    lifetime_s = factors.lifetime_years * SECONDS_PER_YEAR
    return total_kg * 1000.0 * max(0.0, duration_s) / lifetime_s


def _cuts(start: datetime, end: datetime, history: Forecast) -> list[datetime]:
    """``start``, every grid boundary strictly inside ``(start, end)``, and ``end``."""
    cuts = [start]
    # Outside the history the edge values hold, so only boundaries inside it can change
    # the intensity.
    first = max(1, (start - history.start) // history.step + 1)
    boundary = history.start + first * history.step
    while boundary < min(end, history.end):
        cuts.append(boundary)
        boundary += history.step
    if end > start:
        cuts.append(end)
    return cuts


def _value_near(history: Forecast, at: datetime) -> float:
    if at < history.start:
        return history.values[0]
    if at >= history.end:
        return history.values[-1]
    return history.value_at(at)


def _shifted(timeline: Timeline, shift: timedelta) -> list[tuple[datetime, float]]:
    return [(at + shift, value) for at, value in timeline]
