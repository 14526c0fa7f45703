"""Provider names -> factories, and the parser for chain specs such as
``uk:13,egrid:RFCE,watttime:CAISO_NORTH,electricitymaps:GB,trace:path.csv``.

Factories receive a ``ProviderContext`` whose HTTP client is built only when a provider asks
for one, so a trace-only chain (simulation) never opens a connection pool.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from greenai.core.errors import ConfigError
from greenai.core.settings import Settings
from greenai.core.time import Clock
from greenai.providers.base import Provider
from greenai.providers.egrid import EgridProvider
from greenai.providers.electricitymaps import ElectricityMapsProvider
from greenai.providers.http import build_http_client
from greenai.providers.trace import TraceProvider
from greenai.providers.uk import UkProvider
from greenai.providers.watttime import WattTimeProvider

# a comma followed by a provider name (then ':' or the end of that item) starts a new item;
# other commas belong to the region, as in ``watttime:51.5,-0.1``
_ITEM_BREAK = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9_-]*\s*(?::|,|$))")
_EMPTY_ITEM = re.compile(r"(^|,)\s*(,|$)")


@dataclass
class ProviderContext:
    """What factories may use; ``client`` is created on first use and then owned here."""

    settings: Settings
    clock: Clock
    sleep: Callable[[float], None] = time.sleep
    given_client: httpx.Client | None = None
    created_clients: list[httpx.Client] = field(default_factory=list)

    @property
    def client(self) -> httpx.Client:
        if self.given_client is None:
            self.given_client = build_http_client(self.settings, sleep=self.sleep)
            self.created_clients.append(self.given_client)
        return self.given_client


Factory = Callable[[ProviderContext, str], Provider]


def _uk(ctx: ProviderContext, region: str) -> Provider:
    return UkProvider(ctx.client)


def _watttime(ctx: ProviderContext, region: str) -> Provider:
    username, password = ctx.settings.watttime_username, ctx.settings.watttime_password
    if not username or password is None:
        raise ConfigError(
            "watttime needs WATTTIME_USERNAME and WATTTIME_PASSWORD (or WATTTIME_PASSWORD_FILE)"
        )
    return WattTimeProvider(ctx.client, username, password, ctx.clock, sleep=ctx.sleep)


def _egrid(ctx: ProviderContext, region: str) -> Provider:
    return EgridProvider()


def _electricitymaps(ctx: ProviderContext, region: str) -> Provider:
    token = ctx.settings.electricitymaps_token
    if token is None or not token.get_secret_value().strip():
        raise ConfigError(
            "electricitymaps needs ELECTRICITYMAPS_TOKEN (or ELECTRICITYMAPS_TOKEN_FILE)"
        )
    if not region:
        raise ConfigError("electricitymaps needs a zone or 'lat,lon', e.g. electricitymaps:GB")
    return ElectricityMapsProvider(ctx.client, token, ctx.settings.electricitymaps_factor)


def _trace(ctx: ProviderContext, region: str) -> Provider:
    if not region:
        raise ConfigError("trace needs a file path, e.g. trace:benchmarks/data/gb.csv")
    return TraceProvider(region, signal=ctx.settings.trace_signal)


PROVIDERS: dict[str, Factory] = {
    "egrid": _egrid,
    "electricitymaps": _electricitymaps,
    "trace": _trace,
    "uk": _uk,
    "watttime": _watttime,
}


def parse_chain(spec: str) -> list[tuple[str, str]]:
    """``"uk:13,egrid:RFCE"`` -> ``[("uk", "13"), ("egrid", "RFCE")]``; a bare name has
    region ``""`` (the provider's default). Unknown names are a ConfigError listing the known."""
    items = [item.strip() for item in _ITEM_BREAK.split(spec.strip())]
    if not all(items) or _EMPTY_ITEM.search(spec):
        raise ConfigError(f"empty provider in chain {spec!r} (e.g. 'uk:13,egrid:RFCE')")
    chain = []
    for item in items:
        name, _, region = item.partition(":")
        name = name.strip().lower()
        if name not in PROVIDERS:
            known = ", ".join(sorted(PROVIDERS))
            raise ConfigError(f"unknown provider {name!r} in {spec!r}; known: {known}")
        chain.append((name, region.strip()))
    return chain


def create_provider(name: str, region: str, ctx: ProviderContext) -> tuple[Provider, str]:
    """The provider and its normalised region (a bad region is a ConfigError now)."""
    provider = PROVIDERS[name](ctx, region)
    check = getattr(provider, "check_region", None)
    return provider, (check(region) if check is not None else region)
