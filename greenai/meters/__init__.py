"""Energy meters: NVML (GPU), CodeCarbon offline (CPU+RAM), RAPL, and an honest estimate.

``build_meter(settings, gpus, clock)`` is the one entry point the rest of greenai needs.
"""

from greenai.meters.base import Meter
from greenai.meters.composite import CompositeMeter, build_meter, merge_readings

__all__ = ["CompositeMeter", "Meter", "build_meter", "merge_readings"]
