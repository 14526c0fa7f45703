"""The background sampler and timeline interpolation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from greenai.meters.sampling import CumulativeSampler, cumulative_at
from tests.meters.fakes import TickingClock

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_failed_reads_are_counted_and_sampling_goes_on() -> None:
    calls: list[bool] = []

    def read(full: bool) -> float:
        calls.append(full)
        if len(calls) % 2:
            raise OSError("transient driver error")
        return float(len(calls))

    sampler = CumulativeSampler(
        read, TickingClock(T0), name="test", poll_seconds=0.002, record_seconds=0.0
    )
    sampler.start()
    deadline = time.monotonic() + 2
    while len(calls) < 6 and time.monotonic() < deadline:
        time.sleep(0.002)
    samples = sampler.stop()
    assert sampler.failed_reads >= 3
    values = [kwh for _, kwh in samples]
    assert values[0] == 0.0 and values == sorted(values) and values[-1] > 0


def test_cumulative_at_interpolates_and_clamps() -> None:
    t = [T0 + timedelta(seconds=s) for s in (0, 10, 30)]
    samples = [(t[0], 0.0), (t[1], 1.0), (t[2], 5.0)]
    assert cumulative_at(samples, T0 - timedelta(seconds=1)) == 0.0
    assert cumulative_at(samples, T0 + timedelta(seconds=5)) == pytest.approx(0.5)
    assert cumulative_at(samples, T0 + timedelta(seconds=20)) == pytest.approx(3.0)
    assert cumulative_at(samples, T0 + timedelta(hours=1)) == 5.0
    assert cumulative_at([], T0) == 0.0
