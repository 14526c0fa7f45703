"""Chain specs and the provider registry."""

from __future__ import annotations

import pytest

from greenai.core.errors import ConfigError
from greenai.core.settings import Settings, load_settings
from greenai.providers import PROVIDERS, build_chain, parse_chain


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("uk:13", [("uk", "13")]),
        ("uk", [("uk", "")]),
        (
            "uk:13,egrid:RFCE,watttime:CAISO_NORTH,trace:data/gb.csv",
            [
                ("uk", "13"),
                ("egrid", "RFCE"),
                ("watttime", "CAISO_NORTH"),
                ("trace", "data/gb.csv"),
            ],
        ),
        (" UK:BS16 , egrid ", [("uk", "BS16"), ("egrid", "")]),
        ("watttime:42.37,-72.52,egrid:NEWE", [("watttime", "42.37,-72.52"), ("egrid", "NEWE")]),
        (
            "electricitymaps:51.5,-0.1,egrid:RFCE",
            [("electricitymaps", "51.5,-0.1"), ("egrid", "RFCE")],
        ),
    ],
)
def test_parse_chain(spec: str, expected: list[tuple[str, str]]) -> None:
    assert parse_chain(spec) == expected


def test_unknown_provider_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown provider 'tomorrow'.*egrid, electricitymaps"):
        parse_chain("uk:13,tomorrow:GB")


@pytest.mark.parametrize("spec", ["", " ", "uk:13,,egrid"])
def test_empty_items_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="empty provider"):
        parse_chain(spec)


def test_registry_names() -> None:
    assert sorted(PROVIDERS) == ["egrid", "electricitymaps", "trace", "uk", "watttime"]


def test_bad_region_fails_at_build_time(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="1-17"):
        build_chain("uk:42,egrid", settings)
    with pytest.raises(ConfigError, match="valid codes"):
        build_chain("uk:13,egrid:NOPE", settings)


def test_watttime_without_credentials(tmp_path: object) -> None:
    bare = load_settings(env={}, home=tmp_path)
    with pytest.raises(ConfigError, match="WATTTIME_USERNAME"):
        build_chain("watttime:CAISO_NORTH", bare)


def test_chain_without_http_builds_no_client(settings: Settings) -> None:
    chain = build_chain("egrid:CAMX", settings)
    assert chain._owned_clients == ()
    assert chain.primary == "egrid:CAMX"


def test_chain_builds_and_closes_its_own_client(settings: Settings) -> None:
    chain = build_chain("uk:13,egrid", settings)
    assert len(chain._owned_clients) == 1
    assert chain.labels == ("uk:13", "egrid:US")
    chain.close()
    assert chain._owned_clients[0].is_closed
