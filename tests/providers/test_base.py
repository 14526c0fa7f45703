"""The shared helpers: gaps are reported and never filled; junk is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from greenai.core.errors import ProviderError
from greenai.providers.base import (
    contiguous_run,
    decode_json,
    describe,
    intensity,
    number,
    period,
    sanitise,
    steps_between,
    time_field,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=30)


def at(i: int) -> datetime:
    return T0 + i * STEP


def test_a_whole_run_comes_back_sorted_without_warnings() -> None:
    start, values, warnings = contiguous_run([(at(1), 2.0), (at(0), 1.0)], STEP, at(0), "x")
    assert (start, values, warnings) == (at(0), (1.0, 2.0), ())


def test_anchor_after_every_run_keeps_the_first() -> None:
    points = [(at(0), 1.0), (at(3), 4.0)]
    start, values, warnings = contiguous_run(points, STEP, at(10), "x")
    assert (start, values) == (at(0), (1.0,))
    assert warnings[0].startswith("gap: 2 missing periods")


def test_anchor_before_the_data_keeps_the_first_run_after_it() -> None:
    start, values, _ = contiguous_run([(at(2), 3.0), (at(5), 6.0)], STEP, at(0), "x")
    assert (start, values) == (at(2), (3.0,))


def test_off_grid_points_are_refused() -> None:
    with pytest.raises(ProviderError, match="off the"):
        contiguous_run([(at(0), 1.0), (at(0) + timedelta(minutes=7), 2.0)], STEP, at(0), "x")


def test_no_points_is_an_error() -> None:
    with pytest.raises(ProviderError, match="no data points"):
        contiguous_run([], STEP, at(0), "x")


def test_decode_json_names_empty_and_malformed_bodies() -> None:
    with pytest.raises(ProviderError, match="empty response"):
        decode_json(httpx.Response(200, content=b"  \n"), "x")
    with pytest.raises(ProviderError, match="malformed JSON"):
        decode_json(httpx.Response(200, content=b"<html>"), "x")
    with pytest.raises(ProviderError, match="malformed JSON"):
        decode_json(httpx.Response(200, content=b"\xff\xfe\x00"), "x")
    assert decode_json(httpx.Response(200, json={"a": 1}), "x") == {"a": 1}


def test_steps_between_always_covers_now() -> None:
    assert steps_between(at(0), at(0), STEP) == 1
    assert steps_between(at(0), at(2), STEP) == 2
    assert steps_between(at(0), at(2) + timedelta(seconds=1), STEP) == 3


@pytest.mark.parametrize(
    "value", ["12", True, None, [1], {"a": 1}, float("nan"), float("inf"), 10**400]
)
def test_number_refuses_non_numbers_without_echoing_them(value: object) -> None:
    with pytest.raises(ProviderError) as caught:
        number(value, "value", "x:y")
    assert "'value'" in str(caught.value)
    assert "{'a'" not in str(caught.value) and "'12'" not in str(caught.value)


@pytest.mark.parametrize("value", [-1, -0.001, 10_001, 1e300])
def test_intensity_must_be_in_range(value: float) -> None:
    with pytest.raises(ProviderError, match="impossible intensity"):
        intensity(value, "forecast", "x:y")
    assert intensity(0, "forecast", "x:y") == 0.0


@pytest.mark.parametrize("seconds", [0, -300, 59, 86_401, 1e30, "300", None])
def test_period_is_one_minute_to_one_day(seconds: object) -> None:
    with pytest.raises(ProviderError):
        period(seconds, "data_point_period_seconds", "x:y")
    assert period(300, "p", "x:y") == timedelta(minutes=5)
    assert period(86_400, "p", "x:y") == timedelta(days=1)


@pytest.mark.parametrize(
    "value",
    ["yesterday", "", 1_689_000_000, None, "9999-12-31T23:59Z", "0001-01-01T00:00+05:00"],
)
def test_time_field_refuses_junk_and_absurd_times(value: object) -> None:
    with pytest.raises(ProviderError) as caught:
        time_field(value, "from", "x:y")
    assert "yesterday" not in str(caught.value)
    assert time_field("2024-01-01T00:30Z", "from", "x:y") == at(1)


def test_contiguous_run_refuses_a_zero_or_huge_step() -> None:
    for step in (timedelta(0), timedelta(days=2), timedelta(seconds=-5)):
        with pytest.raises(ProviderError, match="period"):
            contiguous_run([(at(0), 1.0)], step, at(0), "x:y")


def test_sanitise_and_describe_keep_messages_short_and_plain() -> None:
    assert sanitise("a\nb\x1b[31m  c" + "z" * 500, 20) == "a b [31m czzzzzzz..."
    assert describe("secret") == "a string of 6 characters"
    assert describe([1, 2]) == "a list of 2 items"
    assert describe({"k": "secret"}) == "an object of 1 fields"


@pytest.mark.parametrize(
    "content", [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' + b"9" * 5000 + b"}", b"\xff\xfe"]
)
def test_decode_json_turns_every_parser_failure_into_a_provider_error(content: bytes) -> None:
    with pytest.raises(ProviderError, match="malformed JSON"):
        decode_json(httpx.Response(200, content=content), "x:y")
