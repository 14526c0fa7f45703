"""build_run_record: the accounting a front-end needs, in one call."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.domain import EnergyReading, Forecast, Signal
from greenai.core.settings import load_settings
from greenai.evidence import append_run, build_run_record
from greenai.evidence.sci import sci_row

NOON = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)
HISTORY = Forecast(
    start=NOON,
    step=timedelta(minutes=30),
    values=(100.0, 300.0),
    signal=Signal.MARGINAL,
    source="cache:uk:13",
    region="13",
    issued_at=NOON,
    fallback="cache",
)
READING = EnergyReading(
    NOON + timedelta(minutes=15),
    NOON + timedelta(minutes=45),
    gpu_kwh=0.4,
    meter="nvml",
    gpu_count=1,
    samples=(
        (NOON + timedelta(minutes=15), 0.0),
        (NOON + timedelta(minutes=30), 0.1),
        (NOON + timedelta(minutes=45), 0.4),
    ),
)


def test_record_carries_actual_counterfactual_and_embodied() -> None:
    settings = load_settings(env={}, functional_unit="image", units=4)
    record = build_run_record(
        READING, settings, job_id="j1", command=["python", "train.py", "--name", "a b"],
        submitted_at=NOON, exit_code=0, policy="threshold", decision="start",
        history=HISTORY, forecast_intensity=150.0, run_id="r1", host="node1",
    )  # fmt: skip
    assert record.command == "python train.py --name 'a b'"
    assert (record.operational_g, record.actual_intensity) == pytest.approx((100.0, 250.0))
    assert (record.counterfactual_intensity, record.counterfactual_g) == pytest.approx((100, 40))
    assert record.embodied_g == pytest.approx(300_000 * 1800 / (4 * 365.25 * 86400))
    assert (record.provider, record.region, record.signal) == ("uk", "13", "marginal")
    assert (record.fallback, record.functional_unit, record.units) == ("cache", "image", 4)
    assert (record.delay_s, record.duration_s) == (900, 1800)
    row = sci_row(record)
    assert row["saved_g"] == "-60"  # waiting 15 min ran into the dirtier half hour
    assert row["sci_g_per_unit"] == f"{(100 + record.embodied_g) / 4:.6f}"


def test_without_history_the_emissions_are_unknown_not_zero(tmp_path: Path) -> None:
    record = build_run_record(
        READING, load_settings(env={}), job_id="j1", command="true", submitted_at=NOON,
        exit_code=1, policy="threshold", decision="start (no signal)", history=None,
    )  # fmt: skip
    assert math.isnan(record.operational_g) and record.actual_intensity is None
    assert record.counterfactual_g is None and record.provider == ""
    path = tmp_path / "e.csv"
    append_run(path, record)
    row = sci_row(record)
    assert (row["operational_g"], row["actual_intensity"], row["saved_g"]) == ("", "", "")
    assert row["embodied_g"] != "" and row["energy_kwh"] == "0.4"
