"""How each figure of an evidence row was obtained, in the row's own columns.

A reader of one row must see, without the README, which energy parts a meter measured, which
an estimate or model stands for and which nobody measured, and whether the intensities are a
grid's recorded actuals or something that stood in for them (a forecast, a static annual
average). These are pure functions of the reading and the history the row was accounted with.

Energy methods (``cpu_method``, ``gpu_method``, ``ram_method``; docs/formats.md §4):

- ``nvml``: the GPU's energy counter; ``nvml-power``: NVML power readings integrated;
- ``rapl``: the CPU package / DRAM energy counters;
- ``codecarbon``: CodeCarbon (RAPL where it can read it, otherwise its TDP x load model,
  which the reading's notes then say);
- ``estimate``: the estimate meter's TDP model; ``declared``: the power the user declared;
- ``slurm``: Slurm's ``acct_gather_energy`` plugin (sacct's ``ConsumedEnergyRaw``): the job's
  nodes' energy, booked as CPU, with GPU and RAM ``included``;
- ``included``: this part's energy is inside another part's (a declared power booked as one
  part, the TDP model's host watts covering RAM);
- ``not-measured``: the part exists but nothing measured it (its cell is empty);
- ``none``: the run had no such hardware (no GPUs given), so 0 is the true figure.
"""

from __future__ import annotations

import math

from greenai.core.domain import EnergyReading, Forecast

PARTS = ("cpu", "gpu", "ram")
ESTIMATED_METHODS = frozenset({"estimate", "declared", "codecarbon-model"})
NOT_MEASURED = "not-measured"
# The estimate meter's note when the power was declared; a stand-in reading (the executor
# measured nothing: a Kubernetes pod) puts why before it, so it is looked for anywhere.
DECLARED_NOTE = "estimate, not a measurement: declared "
MODELLED_NOTE = "modelled"  # a reading's note when CodeCarbon modelled the CPU (no RAPL)


def energy_methods(reading: EnergyReading) -> dict[str, str]:
    """``{"cpu": method, "gpu": method, "ram": method}`` for ``reading``."""
    names = set(reading.meter.split("+"))
    methods = {part: NOT_MEASURED for part in PARTS}
    if "nvml" in names:
        methods["gpu"] = "nvml"
    elif "nvml-power" in names:
        methods["gpu"] = "nvml-power"
    host = _host_method(names, reading.notes)
    if host is not None:
        methods["cpu"] = methods["ram"] = host
    if "estimate" in names:
        methods.update(_estimate_methods(reading))
    if "slurm" in names:  # the nodes' energy as Slurm's energy plugin saw it, in one figure
        methods.update(cpu="slurm", ram="included", gpu="included")
    if not reading.gpu_count:
        methods["gpu"] = "none"
    for part in PARTS:  # a part the meter left unknown is unknown, whatever was configured
        if not math.isfinite(getattr(reading, f"{part}_kwh")):
            methods[part] = NOT_MEASURED
    return methods


def _host_method(names: set[str], notes: tuple[str, ...]) -> str | None:
    if "rapl" in names:
        return "rapl"
    if "codecarbon" in names:
        modelled = any(MODELLED_NOTE in note and "CodeCarbon" in note for note in notes)
        return "codecarbon-model" if modelled else "codecarbon"
    return None


def _estimate_methods(reading: EnergyReading) -> dict[str, str]:
    """The estimate meter books a declared power wholly to the GPUs (or the CPU without
    GPUs); its TDP model books GPU watts and host watts (CPU and RAM together)."""
    declared = any(DECLARED_NOTE in note for note in reading.notes)
    if declared:
        if reading.gpu_count:
            return {"gpu": "declared", "cpu": "included", "ram": "included"}
        return {"cpu": "declared", "ram": "included"}
    return {"gpu": "estimate", "cpu": "estimate", "ram": "included"}


def unmeasured_parts(methods: dict[str, str]) -> set[str]:
    """Parts whose cell must be empty: nothing measured them, or another part holds them."""
    return {part for part, method in methods.items() if method in (NOT_MEASURED, "included")}


def estimated_columns(methods: dict[str, str], history: Forecast | None) -> list[str]:
    """The row's columns that hold an estimate or a stand-in rather than a measurement or a
    grid's recorded actual: energy parts from a model or a declared power, and intensities
    (with the grams they weigh) from a forecast or a static annual average."""
    columns = [f"{part}_kwh" for part in PARTS if methods[part] in ESTIMATED_METHODS]
    if history is not None and (history.static or history.forecast_only):
        columns += ["actual_intensity", "counterfactual_intensity"]
    return columns
