"""Time-resolved accounting against hand-computed examples and a few properties.

The grid: 12:00-12:30 at 100 g/kWh, 12:30-13:00 at 300 g/kWh.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenai.core.domain import EnergyReading, Forecast, Signal
from greenai.core.settings import load_settings
from greenai.evidence.accounting import (
    counterfactual,
    embodied_grams,
    energy_timeline,
    time_resolved_intensity,
)

NOON = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return NOON + timedelta(minutes=minutes)


HISTORY = Forecast(
    start=NOON,
    step=timedelta(minutes=30),
    values=(100.0, 300.0),
    signal=Signal.AVERAGE,
    source="uk:13",
    region="13",
    issued_at=NOON,
)


def reading(
    start: float, end: float, kwh: float, samples: Sequence[tuple[datetime, float]] = ()
) -> EnergyReading:
    return EnergyReading(at(start), at(end), gpu_kwh=kwh, meter="nvml", samples=tuple(samples))


def test_timeline_charges_each_interval_its_own_energy() -> None:
    # 0.1 kWh in 12:15-12:30, 0.3 kWh in 12:30-12:45: 0.1 x 100 + 0.3 x 300 = 100 g
    run = reading(15, 45, 0.4, [(at(15), 0.0), (at(30), 0.1), (at(45), 0.4)])
    grams, intensity = time_resolved_intensity(run, HISTORY)
    assert grams == pytest.approx(100.0)
    assert intensity == pytest.approx(250.0)


def test_samples_between_boundaries_are_interpolated() -> None:
    # at 12:30 the timeline holds 0.1 + 0.3 x 5/20 = 0.175 kWh: 0.175 x 100 + 0.225 x 300 = 85
    run = reading(15, 45, 0.4, [(at(15), 0.0), (at(25), 0.1), (at(45), 0.4)])
    assert time_resolved_intensity(run, HISTORY) == pytest.approx((85.0, 212.5))


def test_without_samples_energy_is_spread_evenly() -> None:
    # 0.2 kWh in each half: 0.2 x 100 + 0.2 x 300 = 80 g
    assert time_resolved_intensity(reading(15, 45, 0.4), HISTORY) == pytest.approx((80.0, 200.0))


def test_timeline_shape_is_scaled_to_the_reading_total() -> None:
    # the GPU timeline holds 0.2 kWh but the reading (with CPU) 0.4: same shape, doubled
    run = EnergyReading(
        at(15), at(45), gpu_kwh=0.2, cpu_kwh=0.2, meter="nvml+codecarbon",
        samples=((at(15), 0.0), (at(30), 0.05), (at(45), 0.2)),
    )  # fmt: skip
    assert energy_timeline(run)[1] == (at(30), pytest.approx(0.1))
    assert time_resolved_intensity(run, HISTORY) == pytest.approx((100.0, 250.0))


def test_zero_energy_gives_zero_grams_and_the_time_weighted_mean() -> None:
    # 10 min at 100 and 20 min at 300: (1000 + 6000) / 30
    assert time_resolved_intensity(reading(20, 50, 0.0), HISTORY) == (0.0, pytest.approx(700 / 3))
    assert time_resolved_intensity(reading(40, 40, 0.0), HISTORY) == (0.0, 300.0)


def test_run_past_the_history_uses_the_edge_value() -> None:
    # 12:45-13:15, 0.2 kWh spread evenly; 13:00-13:15 has no data and takes 300
    assert time_resolved_intensity(reading(45, 75, 0.2), HISTORY) == pytest.approx((60.0, 300.0))


def test_run_outside_the_history_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"uk:13.*does not cover"):
        time_resolved_intensity(reading(90, 120, 0.2), HISTORY)


def test_counterfactual_shifts_the_same_profile_to_submit_time() -> None:
    # submitted 12:00, ran 12:15-12:45: had it started at submit, 12:00-12:30 at 100 g/kWh
    run = reading(15, 45, 0.4, [(at(15), 0.0), (at(30), 0.1), (at(45), 0.4)])
    assert counterfactual(run, NOON, HISTORY) == pytest.approx((100.0, 40.0))
    # submitted 12:20: runs 12:20-12:50, the timeline holds 0.1 x 10/15 kWh at 12:30:
    # 0.1 x 2/3 x 100 + (0.4 - 0.1 x 2/3) x 300 = 320/3 g
    assert counterfactual(run, at(20), HISTORY) == pytest.approx((800 / 3, 320 / 3))


def test_embodied_share_of_gpus_and_host_over_the_lifetime() -> None:
    settings = load_settings(env={})  # 150 kg/GPU, 1200 kg host over 8 GPUs, 4 years
    lifetime_s = 4 * 365.25 * 86400
    assert embodied_grams(settings, 1, 3600) == pytest.approx(300_000 * 3600 / lifetime_s)
    assert embodied_grams(settings, 8, 3600) == pytest.approx(2_400_000 * 3600 / lifetime_s)
    assert embodied_grams(settings, 0, 3600) == pytest.approx(150_000 * 3600 / lifetime_s)
    assert embodied_grams(settings, 1, 3600) == pytest.approx(8.5557, abs=1e-4)
    custom = load_settings(env={}, embodied_kg_per_gpu=0, embodied_kg_host=0)
    assert embodied_grams(custom, 4, 3600) == 0.0


@given(
    increments=st.lists(st.floats(0, 10), min_size=1, max_size=8),
    offset=st.integers(0, 29),
)
def test_intensity_is_bounded_by_the_grid_and_grams_match_it(
    increments: list[float], offset: int
) -> None:
    samples, total = [(at(offset), 0.0)], 0.0
    for i, step in enumerate(increments, start=1):
        total += step
        samples.append((at(offset + 3 * i), total))
    run = EnergyReading(samples[0][0], samples[-1][0], gpu_kwh=total, samples=tuple(samples))
    grams, intensity = time_resolved_intensity(run, HISTORY)
    assert 100.0 - 1e-9 <= intensity <= 300.0 + 1e-9
    if total > 0:
        assert grams == pytest.approx(intensity * total)
