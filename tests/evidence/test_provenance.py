"""Each energy part says how it was obtained, and estimates say so in the row (issue 9)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from greenai.core.domain import NOT_MEASURED, EnergyReading, Forecast, Job, Signal
from greenai.core.settings import load_settings
from greenai.evidence.provenance import energy_methods, estimated_columns
from greenai.evidence.records import FinishedRun, account_run
from greenai.evidence.sci import notes_cell, sci_row
from greenai.meters.estimate import EstimateMeter
from tests.fakes import FrozenClock

NOON = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)
HISTORY = Forecast(NOON, timedelta(minutes=30), (100.0,), Signal.AVERAGE, "uk:13", "13", NOON)


def reading(meter: str, **parts: object) -> EnergyReading:
    base = EnergyReading(NOON, NOON + timedelta(minutes=10), gpu_kwh=0.2, cpu_kwh=0.05,
                         ram_kwh=0.01, meter=meter, gpu_count=1)  # fmt: skip
    return replace(base, **parts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("energy", "methods"),
    [
        (reading("nvml+codecarbon"), ("codecarbon", "nvml", "codecarbon")),
        (reading("nvml-power+rapl"), ("rapl", "nvml-power", "rapl")),
        (reading("nvml", cpu_kwh=0.0, ram_kwh=0.0), ("not-measured", "nvml", "not-measured")),
        (reading("codecarbon", gpu_kwh=0.0, gpu_count=0), ("codecarbon", "none", "codecarbon")),
        (reading("codecarbon", gpu_kwh=NOT_MEASURED, gpu_count=2),
         ("codecarbon", "not-measured", "codecarbon")),
        (reading("codecarbon", gpu_kwh=0.0, gpu_count=0,
                 notes=("cpu_kwh modelled by CodeCarbon (TDP x load), not measured",)),
         ("codecarbon-model", "none", "codecarbon-model")),
        (reading("none", cpu_kwh=NOT_MEASURED, gpu_kwh=NOT_MEASURED, ram_kwh=NOT_MEASURED),
         ("not-measured", "not-measured", "not-measured")),
    ],
)  # fmt: skip
def test_each_part_names_its_method(energy: EnergyReading, methods: tuple[str, ...]) -> None:
    assert tuple(energy_methods(energy)[part] for part in ("cpu", "gpu", "ram")) == methods


def six_minutes_of(meter: EstimateMeter, clock: FrozenClock) -> dict[str, str]:
    token = meter.start()
    clock.advance(360)
    return sci_row_of(meter.stop(token))


def methods_of(row: dict[str, str]) -> tuple[str, str, str]:
    return row["gpu_method"], row["cpu_method"], row["ram_method"]


def test_the_estimate_meter_says_declared_or_modelled_and_where_it_booked_it() -> None:
    clock = FrozenClock(NOON)
    row = six_minutes_of(EstimateMeter(clock, power_watts=300, gpu_count=2), clock)
    assert methods_of(row) == ("declared", "included", "included")
    assert (row["gpu_kwh"], row["cpu_kwh"], row["ram_kwh"], row["energy_kwh"]) == (
        "0.03", "", "", "0.03"
    )  # fmt: skip
    assert row["estimated"] == "gpu_kwh"
    row = six_minutes_of(EstimateMeter(clock, gpu_count=1, cpu_threads=8), clock)
    assert methods_of(row) == ("estimate", "estimate", "included")
    assert row["estimated"] == "cpu_kwh;gpu_kwh"
    assert row["notes"].startswith("estimate, not a measurement: TDP model")


def test_a_part_nobody_measured_is_an_empty_cell_not_0() -> None:
    row = sci_row_of(reading("nvml", cpu_kwh=0.0, ram_kwh=0.0))
    assert (row["cpu_kwh"], row["gpu_kwh"], row["ram_kwh"]) == ("", "0.2", "")
    assert row["energy_kwh"] == "0.2"  # the sum of what was measured
    assert row["estimated"] == ""


def test_intensities_from_a_forecast_or_an_annual_average_are_marked_estimated() -> None:
    methods = energy_methods(reading("nvml+rapl"))
    assert estimated_columns(methods, HISTORY) == []
    both = ["actual_intensity", "counterfactual_intensity"]
    assert estimated_columns(methods, replace(HISTORY, forecast_only=True)) == both
    assert estimated_columns(methods, replace(HISTORY, static=True)) == both


def test_notes_reach_one_cell_once_each_on_one_line() -> None:
    notes = ("nvml unavailable: no GPU", "two\nlines", "nvml unavailable: no GPU", "")
    assert notes_cell(notes) == "nvml unavailable: no GPU; two lines"


def sci_row_of(energy: EnergyReading) -> dict[str, str]:

    job = Job("j", NOON, timedelta(minutes=10), NOON + timedelta(hours=1), command=("true",))
    return sci_row(account_run(FinishedRun("r", job, None, energy, 0, "h"), HISTORY,
                               load_settings(env={})))  # fmt: skip
