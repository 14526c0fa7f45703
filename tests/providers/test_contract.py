"""One contract, every Provider: a forecast covers now and says its signal and source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr

from greenai.core.domain import Signal
from greenai.providers.base import Provider
from greenai.providers.egrid import EgridProvider
from greenai.providers.electricitymaps import ElectricityMapsProvider
from greenai.providers.trace import TraceProvider
from greenai.providers.uk import UkProvider
from greenai.providers.watttime import WattTimeProvider
from tests.fakes import FrozenClock
from tests.providers.conftest import (
    DATA,
    UK_NOW,
    UK_URL,
    WT_NOW,
    WT_PASSWORD,
    WT_TOKEN,
    WT_URL,
    load_json,
    uk_periods,
)

GB_TRACE = str(DATA.parents[1] / "greenai" / "data" / "gb-2023-hourly.csv")


@dataclass
class Case:
    provider: Provider
    region: str
    now: datetime
    source_prefix: str


def _uk(router: respx.MockRouter, client: httpx.Client) -> Case:
    router.get(f"{UK_URL}/regional/intensity/2023-05-04T12:30Z/fw48h/postcode/BS16").respond(
        json=load_json("uk_postcode_fw48h.json")
    )
    router.get(f"{UK_URL}/regional/postcode/BS16").respond(
        json=load_json("uk_regionid_current.json")
    )
    history = {"data": {"data": uk_periods(UK_NOW.replace(minute=0) - timedelta(hours=4), UK_NOW)}}
    router.get(url__regex=rf"^{UK_URL}/regional/intensity/[^/]+/[^/]+/postcode/BS16$").respond(
        json=history
    )
    return Case(UkProvider(client), "BS16", UK_NOW, "uk:")


def _watttime(router: respx.MockRouter, client: httpx.Client) -> Case:
    router.get(f"{WT_URL}/login").respond(json={"token": WT_TOKEN})
    router.get(f"{WT_URL}/v3/forecast").respond(json=load_json("watttime_forecast.json"))
    history = load_json("watttime_forecast.json")
    for i, point in enumerate(history["data"]):
        point["point_time"] = (
            WT_NOW.replace(minute=0) - timedelta(hours=3) + i * timedelta(minutes=5)
        ).isoformat()
    router.get(f"{WT_URL}/v3/historical").respond(json=history)
    provider = WattTimeProvider(client, "alice", SecretStr(WT_PASSWORD), FrozenClock(WT_NOW))
    return Case(provider, "CAISO_NORTH", WT_NOW, "watttime:")


def _egrid(router: respx.MockRouter, client: httpx.Client) -> Case:
    return Case(EgridProvider(), "rfce", datetime(2024, 5, 1, 9, 10, tzinfo=UTC), "egrid:")


def _electricitymaps(router: respx.MockRouter, client: httpx.Client) -> Case:
    em = "https://api.electricitymap.org/v3/carbon-intensity"
    now = datetime(2023, 5, 4, 12, 20, tzinfo=UTC)
    for factor in ("lifecycle", "direct"):
        router.get(f"{em}/forecast", params={"emissionFactorType": factor}).respond(
            json=load_json(f"electricitymaps_forecast_{factor}.json")
        )
        router.get(f"{em}/past-range", params={"emissionFactorType": factor}).respond(
            json=load_json(f"electricitymaps_past_range_{factor}.json")
        )
    router.get(f"{em}/latest").respond(json=load_json("electricitymaps_latest.json"))
    provider = ElectricityMapsProvider(client, SecretStr("em-token"))
    return Case(provider, "GB", now, "electricitymaps:")


def _trace(router: respx.MockRouter, client: httpx.Client) -> Case:
    now = datetime(2023, 6, 1, 9, 10, tzinfo=UTC)
    return Case(TraceProvider(GB_TRACE), GB_TRACE, now, "trace:")


@pytest.fixture(
    params=[_uk, _watttime, _egrid, _electricitymaps, _trace],
    ids=["uk", "watttime", "egrid", "electricitymaps", "trace"],
)
def case(request: pytest.FixtureRequest, client: httpx.Client) -> Iterator[Case]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield request.param(router, client)


def test_is_a_provider(case: Case) -> None:
    assert isinstance(case.provider, Provider)
    assert case.provider.name in ("uk", "watttime", "egrid", "electricitymaps", "trace")
    assert isinstance(case.provider.signal, Signal)


def test_forecast_covers_now_with_signal_and_source(case: Case) -> None:
    forecast = case.provider.forecast(case.region, case.now, timedelta(hours=1))
    assert forecast.covers(case.now)
    assert forecast.index_at(case.now) == 0  # starts at the step holding now
    assert forecast.end >= case.now + timedelta(hours=1)
    assert forecast.signal is case.provider.signal
    assert forecast.source.startswith(case.source_prefix)
    assert forecast.region
    assert all(v >= 0 for v in forecast.values)


def test_current_is_the_step_holding_now(case: Case) -> None:
    point = case.provider.current(case.region, case.now)
    assert point.start <= case.now
    assert case.now - point.start < timedelta(hours=1)
    assert point.value >= 0


def test_history_starts_at_the_start(case: Case) -> None:
    start = case.now.replace(minute=0) - timedelta(hours=3)
    history = case.provider.history(case.region, start, case.now.replace(minute=0))
    assert history.start == start
    assert history.end <= case.now.replace(minute=0) + history.step
    assert history.source.startswith(case.source_prefix)
