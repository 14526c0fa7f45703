"""US EPA eGRID2022 subregion CO2 output rates: the offline floor of a fallback chain.

An annual average cannot say when the grid will be cleaner, so its forecasts are flat and
marked ``static``: a policy that sees only this source should run at once, not wait.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files

from greenai.core.domain import Forecast, IntensityPoint, Signal
from greenai.core.errors import ConfigError
from greenai.core.time import floor_time
from greenai.providers.base import steps_between

logger = logging.getLogger(__name__)

DATA_FILE = "egrid2022-subregion-co2.csv"
G_PER_KWH_PER_LB_PER_MWH = 0.453592
STEP = timedelta(hours=1)
NOTE = "static eGRID2022 annual average: no better time to wait for"


@cache
def egrid_rates() -> dict[str, float]:
    """Subregion code (upper case) -> g/kWh, read once from the package data."""
    text = files("greenai").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    rates = {row[0].strip().upper(): float(row[1]) * G_PER_KWH_PER_LB_PER_MWH for row in rows[1:]}
    logger.debug("egrid: %d subregions loaded", len(rates))
    return rates


def egrid_rate(region: str) -> tuple[str, float]:
    """``(code, g/kWh)`` for a subregion code (any case) or ``US``."""
    code = (region.strip() or "US").upper()
    rates = egrid_rates()
    if code not in rates:
        raise ConfigError(
            f"unknown eGRID subregion {region!r}; valid codes: {', '.join(sorted(rates))}"
        )
    return code, rates[code]


class EgridProvider:
    """Flat forecasts from the bundled table; no network, never fails for a valid code."""

    name = "egrid"
    signal = Signal.AVERAGE
    step = STEP
    static = True
    cacheable = False  # the table is local: nothing to keep for an outage

    def check_region(self, region: str) -> str:
        return egrid_rate(region)[0]

    def forecast(self, region: str, now: datetime, horizon: timedelta) -> Forecast:
        start = floor_time(now, STEP)
        return self._flat(region, start, steps_between(start, now + horizon, STEP), now)

    def current(self, region: str, now: datetime) -> IntensityPoint:
        return IntensityPoint(floor_time(now, STEP), egrid_rate(region)[1])

    def history(self, region: str, start: datetime, end: datetime) -> Forecast:
        first = floor_time(start, STEP)
        return self._flat(region, first, steps_between(first, end, STEP), end)

    def _flat(self, region: str, start: datetime, steps: int, issued_at: datetime) -> Forecast:
        code, rate = egrid_rate(region)
        return Forecast(
            start=start,
            step=STEP,
            values=(rate,) * steps,
            signal=Signal.AVERAGE,
            source=f"egrid:{code}",
            region=code,
            issued_at=issued_at,
            static=True,
            warnings=(NOTE,),
        )
