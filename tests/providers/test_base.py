"""The shared helpers: gaps are reported and never filled; junk is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from greenai.core.errors import ProviderError
from greenai.providers.base import contiguous_run, decode_json, steps_between

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
