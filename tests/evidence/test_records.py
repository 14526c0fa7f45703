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


def test_a_row_never_mixes_the_deciding_signal_with_another_sources_figures() -> None:
    """Issue 9 #1: WattTime (marginal) decided, its history failed, eGRID (average) answered
    the history. The row's figures are eGRID's, so its source and signal are too, and the
    marginal forecast is left out rather than set beside average actuals."""
    started = Decision(
        NOON, "j1", "window", Action.START, "best window starts now (mean 408.2)",
        forecast_intensity=408.2, provider="watttime", region="CAISO_NORTH",
        signal=Signal.MARGINAL, fallback=None,
    )  # fmt: skip
    egrid = Forecast(
        NOON, timedelta(hours=1), (225.6,), Signal.AVERAGE, "egrid:CAMX", "CAMX", NOON,
        static=True, fallback="egrid:CAMX",
    )  # fmt: skip
    record = account_run(
        FinishedRun("r", JOB, started, READING, 0, "h"), egrid, load_settings(env={})
    )
    assert (record.provider, record.region, record.signal) == ("egrid", "CAMX", "average")
    assert record.actual_intensity == pytest.approx(225.6)
    assert record.counterfactual_intensity == pytest.approx(225.6)
    assert record.forecast_intensity is None
    assert record.fallback == (
        "egrid:CAMX; decided on watttime:CAISO_NORTH (marginal); figures from egrid:CAMX "
        "(average), forecast_intensity left out"
    )
    same = account_run(
        FinishedRun("r", JOB, STARTED, READING, 0, "h"), HISTORY, load_settings(env={})
    )
    assert same.forecast_intensity == 150.0  # one source: nothing left out


def test_a_forecast_standing_in_for_history_says_so_and_invents_no_counterfactual() -> None:
    """Issue 9 #4: the history failed after a deferral; the forecast issued at the start is
    all there is. The row says the forecast stood in, and without values at submit time the
    counterfactual is unknown, not the later forecast stretched back."""
    late = NOON + timedelta(hours=1)
    job = Job("j1", NOON - timedelta(hours=3), timedelta(minutes=30), NOON + timedelta(hours=4))
    reading = EnergyReading(late, late + timedelta(minutes=30), gpu_kwh=0.2, meter="nvml")
    forecast = Forecast(
        late, timedelta(minutes=30), (136.0, 136.0), Signal.AVERAGE, "uk:13", "13", late
    )
    history = intensity_history(_Source(None), job, reading.finished_at, forecast)
    assert history is not None and history.values == forecast.values
    record = account_run(
        FinishedRun("r", job, None, reading, 0, "h"), history, load_settings(env={})
    )
    assert record.actual_intensity == pytest.approx(136.0)
    assert record.counterfactual_intensity is None and record.counterfactual_g is None
    assert record.fallback == "forecast uk:13 as actual (history: fake: down)"
    assert sci_row(record)["saved_g"] == ""


def test_the_historys_own_warnings_reach_the_row() -> None:
    """Issue 9 #4: UK regional history is forecast-only, and the provider says so."""
    regional = Forecast(
        NOON, timedelta(minutes=30), (100.0, 300.0), Signal.AVERAGE, "uk:13", "13", NOON,
        warnings=("regional history is the forecast issued at the time, not an outturn",),
    )  # fmt: skip
    record = account_run(
        FinishedRun("r", JOB, None, READING, 0, "h"), regional, load_settings(env={})
    )
    assert record.fallback == "regional history is the forecast issued at the time, not an outturn"


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
    stand_in = intensity_history(_Source(None), JOB, end, last)
    assert stand_in is not None and stand_in.values == last.values
    assert stand_in.fallback == "forecast egrid:US as actual (history: fake: down)"
    unsourced = intensity_history(None, JOB, end, last)
    assert (
        unsourced is not None
        and unsourced.fallback == "forecast egrid:US as actual (history: no source)"
    )


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
