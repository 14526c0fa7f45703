"""The bundled eGRID2022 table: the static, offline floor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from greenai.core.domain import Signal
from greenai.core.errors import ConfigError
from greenai.providers.egrid import EgridProvider, egrid_rates

NOW = datetime(2024, 3, 1, 12, 40, tzinfo=UTC)


def test_table_has_every_subregion_in_grams() -> None:
    rates = egrid_rates()
    assert len(rates) == 28  # 27 subregions + US
    assert rates["CAMX"] == pytest.approx(497.443 * 0.453592)  # 225.6 g/kWh
    assert rates["US"] == pytest.approx(823.149 * 0.453592)


@pytest.mark.parametrize("region", ["rfce", "RFCE", " Rfce "])
def test_region_is_case_insensitive(region: str) -> None:
    forecast = EgridProvider().forecast(region, NOW, timedelta(hours=3))
    assert forecast.source == "egrid:RFCE"
    assert forecast.region == "RFCE"


def test_forecast_is_flat_static_hourly_and_covers_horizon() -> None:
    forecast = EgridProvider().forecast("CAMX", NOW, timedelta(hours=3))
    assert forecast.static
    assert forecast.signal is Signal.AVERAGE
    assert forecast.step == timedelta(hours=1)
    assert forecast.start == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert forecast.end >= NOW + timedelta(hours=3)
    assert len(forecast.values) == 4
    assert len(set(forecast.values)) == 1
    assert forecast.warnings and "static" in forecast.warnings[0]


def test_empty_region_is_the_us_average() -> None:
    assert EgridProvider().current("", NOW).value == pytest.approx(823.149 * 0.453592)


def test_unknown_subregion_lists_valid_codes() -> None:
    with pytest.raises(ConfigError, match=r"unknown eGRID subregion 'XXXX'.*CAMX.*RFCE"):
        EgridProvider().forecast("XXXX", NOW, timedelta(hours=1))


def test_history_covers_the_range() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    history = EgridProvider().history("ERCT", start, start + timedelta(days=2))
    assert len(history.values) == 48
    assert history.values[0] == pytest.approx(771.083 * 0.453592)
