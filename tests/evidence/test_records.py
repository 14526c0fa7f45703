"""account_run: one finished run -> its evidence record, whoever ran it."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.domain import Action, Decision, EnergyReading, Forecast, Job, Signal
from greenai.core.errors import ProviderError
from greenai.core.settings import load_settings
from greenai.evidence import FinishedRun, account_run, append_run, intensity_history
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


JOB = Job(
    "j1",
    NOON,
    timedelta(minutes=30),
    NOON + timedelta(hours=2),
    name="train",
    command=("python", "train.py", "--name", "a b"),
)
STARTED = Decision(
    NOON + timedelta(minutes=15),
    "j1",
    "threshold",
    Action.START,
    "intensity 100 <= threshold 150",
    forecast_intensity=150.0,
)


def test_record_carries_actual_counterfactual_and_embodied() -> None:
    settings = load_settings(env={}, functional_unit="image", units=4)
    run = FinishedRun("r1", JOB, STARTED, READING, 0, "node1")
    record = account_run(run, HISTORY, settings)
    assert record.command == "python train.py --name 'a b'"
    assert (record.policy, record.decision) == ("threshold", "intensity 100 <= threshold 150")
    assert (record.job_name, record.forecast_intensity, record.host) == ("train", 150.0, "node1")
    assert (record.operational_g, record.actual_intensity) == pytest.approx((100.0, 250.0))
    assert (record.counterfactual_intensity, record.counterfactual_g) == pytest.approx((100, 40))
    assert record.embodied_g == pytest.approx(300_000 * 1800 / (4 * 365.25 * 86400))
    assert (record.provider, record.region, record.signal) == ("uk", "13", "marginal")
    assert (record.fallback, record.functional_unit, record.units) == ("cache", "image", 4)
    assert (record.delay_s, record.duration_s) == (900, 1800)
    row = sci_row(record)
    assert row["saved_g"] == "-60"  # waiting 15 min ran into the dirtier half hour
    assert row["sci_g_per_unit"] == f"{(100 + record.embodied_g) / 4:.6f}"


def test_the_deciding_source_is_named_even_when_history_came_from_elsewhere() -> None:
    started = Decision(
        NOON, "j1", "window", Action.START, "best window starts now (mean 90.0)",
        provider="watttime", region="CAISO_NORTH", signal=Signal.MARGINAL, fallback=None,
    )  # fmt: skip
    record = account_run(
        FinishedRun("r", JOB, started, READING, 0, "h"), HISTORY, load_settings(env={})
    )
    assert (record.provider, record.region, record.signal) == (
        "watttime",
        "CAISO_NORTH",
        "marginal",
    )
    assert record.fallback == "cache"  # the history was a stand-in, and the row says so


def test_a_shell_command_line_is_kept_as_run() -> None:
    run = FinishedRun("r", JOB, STARTED, READING, 0, "h", command="make -j4 && ./train")
    assert account_run(run, HISTORY, load_settings(env={})).command == "make -j4 && ./train"


class _Source:
    def __init__(self, answer: Forecast | None) -> None:
        self.answer, self.asked = answer, []

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast:
        raise AssertionError("not used")

    def history(self, start: datetime, end: datetime) -> Forecast:
        self.asked.append((start, end))
        if self.answer is None:
            raise ProviderError("fake", "down")
        return self.answer


def test_history_is_asked_from_submit_to_end_and_falls_back_to_the_last_forecast() -> None:
    source = _Source(HISTORY)
    end = NOON + timedelta(minutes=45)
    assert intensity_history(source, JOB, end, None) is HISTORY
    assert source.asked == [(NOON, end)]
    last = Forecast(NOON, timedelta(hours=1), (1.0,), Signal.AVERAGE, "egrid:US", "US", NOON)
    assert intensity_history(_Source(None), JOB, end, last) is last
    assert intensity_history(None, JOB, end, last) is last


def test_without_history_the_emissions_are_unknown_not_zero(tmp_path: Path) -> None:
    run = FinishedRun("r", JOB, None, READING, 1, "h", command="true")
    record = account_run(run, None, load_settings(env={}))
    assert math.isnan(record.operational_g) and record.actual_intensity is None
    assert record.counterfactual_g is None and record.provider == ""
    path = tmp_path / "e.csv"
    append_run(path, record)
    row = sci_row(record)
    assert (row["operational_g"], row["actual_intensity"], row["saved_g"]) == ("", "", "")
    assert row["embodied_g"] != "" and row["energy_kwh"] == "0.4"
