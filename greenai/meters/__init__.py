"""Energy meters: NVML (GPU), CodeCarbon offline (CPU+RAM), RAPL, and an honest estimate.

``build_meter(config, gpus, clock)`` is the one entry point the rest of greenai needs;
``MeterConfig`` says which meters to use, and ``reading_to_json`` / ``reading_from_json``
carry a reading between processes (a job's supervisor and the daemon).
"""

from greenai.meters.base import Meter
from greenai.meters.composite import CompositeMeter, build_meter, merge_readings
from greenai.meters.config import MeterConfig
from greenai.meters.readings import reading_from_json, reading_to_json

__all__ = [
    "CompositeMeter",
    "Meter",
    "MeterConfig",
    "build_meter",
    "merge_readings",
    "reading_from_json",
    "reading_to_json",
]
