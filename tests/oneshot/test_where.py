"""Locations as configured data (greenai.toml tables, the JSON setting) and the composition
that asks each location's own chain: a location whose source fails is ranked out, with why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.domain import Forecast, Signal
from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings
from greenai.oneshot.where import LocationForecasts, answer, parse_data, power_for
from greenai.policies.where import Question

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
NOW = datetime(2023, 5, 1, tzinfo=UTC)


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "greenai.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_locations_come_from_toml_tables(tmp_path: Path) -> None:
    config = toml(
        tmp_path,
        f"""
[locations.PJM]
source = "trace:{DATA / "US-MIDA-PJM_2023_hourly.electricitymaps.csv"}"
gpus = 64
residency = ["us"]
egress_usd_per_gb = 0.08
bandwidth_gbps = {{ ON = 100 }}

[locations.ON]
source = "egrid:US"
""",
    )
    settings = load_settings(env={}, config_file=config, home=tmp_path)
    pjm = settings.locations["PJM"]
    assert (pjm.gpus, pjm.residency, pjm.egress_usd_per_gb) == (64, ("us",), 0.08)
    assert pjm.bandwidth_gbps == {"ON": 100.0}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[locations.A]\nsource = "egrid"\nbandwidth_gbps = { B = 10 }', "names unknown 'B'"),
        ('[locations.A]\nsource = "egrid"\nbandwidth_gbps = { A = 0 }', "positive finite"),
        ('[locations.A]\nsource = "egrid"\negress_usd_per_gb = -1', "locations.A.egress_usd"),
        ("[locations.A]\ngpus = 2", "locations.A.source"),
        ('[locations.A]\nsource = "egrid"\ncolour = "green"', "locations.A.colour"),
        ('[locations."a b"]\nsource = "egrid"', "location name 'a b'"),
    ],
)
def test_a_bad_location_names_itself_and_the_field(
    tmp_path: Path, table: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env={}, config_file=toml(tmp_path, table), home=tmp_path)


def test_a_location_without_a_signal_is_ranked_out_not_fatal(tmp_path: Path) -> None:
    env = {
        "GREENAI_LOCATIONS": (
            '{"GB": {"source": "trace:' + str(DATA / "GB_2023_hourly.electricitymaps.csv") + '"},'
            ' "OLD": {"source": "trace:' + str(DATA / "caiso-pge-moer-2021-07.csv") + '"}}'
        )
    }
    forecasts = LocationForecasts(load_settings(env=env, home=tmp_path))
    question = Question(NOW, timedelta(hours=2), NOW + timedelta(hours=12), power_kw=1.0)
    ranking, why = answer(forecasts, question, None)
    forecasts.close()
    assert [o.location for o in ranking.ranked] == ["GB"]
    (old,) = ranking.excluded
    assert old.location == "OLD" and old.why_not.startswith("no signal:")
    assert "outside the trace" in old.why_not
    assert why == "stay at GB: no eligible location is cleaner"


def test_data_and_power_read_as_documented(tmp_path: Path) -> None:
    assert parse_data("40TB@PJM") == (40_000.0, "PJM")
    assert parse_data("1.5 pb@ON") == (1_500_000.0, "ON")
    settings = load_settings(env={}, home=tmp_path)
    assert power_for(8, None, settings) == (pytest.approx(5.6), "assumed 700 W per GPU")
    assert power_for(8, 3.0, settings) == (3.0, "declared")
    declared = load_settings(env={"GREENAI_POWER_WATTS": "450"}, home=tmp_path)
    assert power_for(8, None, declared) == (0.45, "declared (power_watts)")


class Counting:
    """A chain that counts its forecasts (the seam ``LocationForecasts`` asks)."""

    def __init__(self) -> None:
        self.asked = 0

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast:
        self.asked += 1
        values = (100.0,) * 72
        return Forecast(NOW, timedelta(hours=1), values, Signal.AVERAGE, "fake:A", "A", now)

    def close(self) -> None:
        return None


def test_forecasts_are_reused_for_five_minutes_when_they_reach_far_enough(
    tmp_path: Path,
) -> None:
    settings = load_settings(env={"GREENAI_LOCATIONS": '{"A": {"source": "egrid"}}'}, home=tmp_path)
    forecasts = LocationForecasts(settings)
    chain = Counting()
    forecasts._chains["A"] = chain  # type: ignore[assignment]
    day = timedelta(hours=24)
    first = forecasts.sites(["A"], NOW, day)[0]
    again = forecasts.sites(["A"], NOW + timedelta(minutes=4), day - timedelta(minutes=4))[0]
    assert chain.asked == 1 and again.forecast == first.forecast
    forecasts.sites(["A"], NOW + timedelta(minutes=4), day)  # reaches further: asked again
    forecasts.sites(["A"], NOW + timedelta(minutes=10), timedelta(hours=1))  # too old
    assert chain.asked == 3
