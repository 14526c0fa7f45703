"""The domain vocabulary's own rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from greenai.core.domain import Forecast, Job, JobState, Signal, provider_of

T0 = datetime(2023, 5, 4, 12, 0, tzinfo=UTC)


def grid(values: tuple[float, ...]) -> Forecast:
    return Forecast(T0, timedelta(minutes=30), values, Signal.AVERAGE, "uk:13", "13", T0)


def test_forecast_lookup_by_time_uses_piecewise_constant_steps() -> None:
    forecast = grid((100.0, 50.0, 25.0))
    assert forecast.value_at(T0 + timedelta(minutes=29, seconds=59)) == 100
    assert forecast.value_at(T0 + timedelta(minutes=30)) == 50
    assert forecast.end == T0 + timedelta(minutes=90)
    assert not forecast.covers(forecast.end)
    with pytest.raises(ValueError, match="outside"):
        forecast.value_at(forecast.end)


def test_since_drops_finished_steps_only() -> None:
    later = grid((100.0, 50.0, 25.0)).since(T0 + timedelta(minutes=45))
    assert later.start == T0 + timedelta(minutes=30)
    assert later.values == (50.0, 25.0)


@pytest.mark.parametrize("values", [(), (float("nan"),), (-1.0,)])
def test_forecast_rejects_impossible_values(values: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        grid(values)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Forecast(T0.replace(tzinfo=None), timedelta(hours=1), (1.0,), Signal.AVERAGE, "x", "", T0)


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_job_max_runtime_must_be_positive(seconds: float) -> None:
    hour = timedelta(hours=1)
    assert Job("j", T0, hour, T0 + hour, max_runtime=timedelta(seconds=1)).max_runtime
    with pytest.raises(ValueError, match="job j: max_runtime must be positive"):
        Job("j", T0, hour, T0 + hour, max_runtime=timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("source", "name"),
    [("uk:13", "uk"), ("cache:uk:13", "uk"), ("egrid:RFCE", "egrid"), ("trace", "trace")],
)
def test_provider_of_a_source_label(source: str, name: str) -> None:
    assert provider_of(source) == name


def test_final_states() -> None:
    assert {s for s in JobState if s.is_final} == {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.EXPIRED,
        JobState.REJECTED,
    }
