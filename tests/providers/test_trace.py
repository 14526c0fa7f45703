"""The trace provider replays only what was known at ``now`` (docs/formats.md §1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.domain import Signal
from greenai.core.errors import ConfigError, ProviderError
from greenai.providers.trace import PERFECT_NOTE, UNSAID_NOTE, TraceProvider

START = datetime(2021, 7, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
MOER_TRACE = str(Path(__file__).resolve().parents[2] / "benchmarks/data/caiso-pge-moer-2021-07.csv")


@pytest.fixture
def with_forecasts(tmp_path: Path) -> str:
    lines = ["timestamp,intensity,f1,f2"]
    for i in range(6):
        stamp = (START + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{stamp},{100 + i},{500 + 10 * i},{600 + 10 * i}")
    path = tmp_path / "fk.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def actual_only(tmp_path: Path) -> str:
    lines = ["timestamp,intensity"]
    for i in range(6):
        stamp = (START + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{stamp},{100 + i}")
    path = tmp_path / "plain.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_current_is_the_measured_value_of_the_step(with_forecasts: str) -> None:
    point = TraceProvider(with_forecasts).current(with_forecasts, START + timedelta(hours=2.5))
    assert point.start == START + timedelta(hours=2)
    assert point.value == 102.0


def test_forecast_uses_the_row_issued_at_now(with_forecasts: str) -> None:
    now = START + timedelta(hours=1, minutes=30)
    forecast = TraceProvider(with_forecasts).forecast(with_forecasts, now, timedelta(hours=2))
    assert forecast.start == START + timedelta(hours=1)
    # actual of the current step, then f1, f2 issued at row 1 (never row 2's actual 102)
    assert forecast.values == (101.0, 510.0, 610.0)
    assert forecast.source == f"trace:{with_forecasts}"
    assert forecast.warnings == (UNSAID_NOTE,)  # the file says nothing of its signal


def test_forecast_longer_than_the_recorded_horizon_says_so(with_forecasts: str) -> None:
    forecast = TraceProvider(with_forecasts).forecast(with_forecasts, START, timedelta(hours=5))
    assert forecast.values == (100.0, 500.0, 600.0)
    assert any("reaches only" in w for w in forecast.warnings)


def test_without_fk_columns_the_forecast_is_perfect_and_says_so(actual_only: str) -> None:
    forecast = TraceProvider(actual_only).forecast(actual_only, START, timedelta(hours=3))
    assert forecast.values == (100.0, 101.0, 102.0)
    assert PERFECT_NOTE in forecast.warnings


def test_history_is_actual(with_forecasts: str) -> None:
    end = START + timedelta(hours=4)
    history = TraceProvider(with_forecasts).history(with_forecasts, START, end)
    assert history.values == (100.0, 101.0, 102.0, 103.0)


def test_beyond_the_trace_is_a_provider_error(with_forecasts: str) -> None:
    with pytest.raises(ProviderError, match="outside the trace"):
        TraceProvider(with_forecasts).current(with_forecasts, START + timedelta(hours=6))
    with pytest.raises(ProviderError, match="outside the trace"):
        TraceProvider(with_forecasts).forecast(with_forecasts, START - timedelta(1), timedelta(1))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        TraceProvider(str(tmp_path / "nope.csv"))


def test_signal_is_what_the_user_declares_where_the_trace_does_not_say(
    with_forecasts: str,
) -> None:
    marginal = TraceProvider(with_forecasts, signal=Signal.MARGINAL)
    answer = marginal.forecast(with_forecasts, START, timedelta(hours=2))
    assert answer.signal is Signal.MARGINAL
    assert UNSAID_NOTE not in answer.warnings


def test_a_trace_nobody_labelled_is_taken_as_average_and_every_answer_says_so(
    with_forecasts: str,
) -> None:
    provider = TraceProvider(with_forecasts)
    answer = provider.forecast(with_forecasts, START, timedelta(hours=2))
    assert answer.signal is Signal.AVERAGE
    assert UNSAID_NOTE in answer.warnings
    assert UNSAID_NOTE in provider.history(with_forecasts, START, START + HOUR).warnings


def test_the_moer_trace_is_marginal_without_any_flag() -> None:
    provider = TraceProvider(MOER_TRACE)
    at = datetime(2021, 7, 1, 12, tzinfo=UTC)
    answer = provider.forecast(MOER_TRACE, at, timedelta(hours=1))
    assert answer.signal is Signal.MARGINAL
    assert UNSAID_NOTE not in answer.warnings


def test_a_declared_signal_that_contradicts_the_trace_is_refused() -> None:
    with pytest.raises(ConfigError, match="the file says its values are marginal"):
        TraceProvider(MOER_TRACE, signal=Signal.AVERAGE)


@pytest.mark.parametrize(("column", "signal"), [("average", "average"), ("marginal", "marginal")])
def test_a_header_can_say_the_signal(tmp_path: Path, column: str, signal: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        f"timestamp,{column}_intensity\n2024-01-01T00:00:00Z,1\n2024-01-01T01:00:00Z,2\n"
    )
    assert TraceProvider(str(path)).signal_of(str(path)) is Signal(signal)


SECRET_LINE = "root:x:0:0:secret-hunter2:/root:/bin/bash"


@pytest.mark.parametrize(
    "body",
    [
        f"{SECRET_LINE}\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
        f"timestamp,intensity\n{SECRET_LINE},1\n2021-07-01T01:00:00Z,2\n",
        f"timestamp,intensity\n2021-07-01T00:00:00Z,{SECRET_LINE}\n",
        f'timestamp,intensity\n"{SECRET_LINE}\'",1\n',
        f"{SECRET_LINE}\0\n",
    ],
    ids=["passwd", "bad-timestamp", "bad-value", "quotes", "nul-byte"],
)
def test_errors_name_file_and_line_never_the_text(tmp_path: Path, body: str) -> None:
    path = tmp_path / "passwd"
    path.write_text(body)
    with pytest.raises(ConfigError) as caught:
        TraceProvider(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}")
    problem = message.removeprefix(f"{path}")
    assert "secret" not in problem and "root" not in problem and "hunter2" not in problem
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_header_error_still_says_what_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"{SECRET_LINE}\n")
    with pytest.raises(ConfigError) as caught:
        TraceProvider(str(path))
    assert str(caught.value) == f"{path}:1: header must start with 'timestamp,intensity'"


def test_a_bad_value_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,intensity\n2021-07-01T00:00:00Z,1\n2021-07-01T01:00:00Z,secret\n")
    with pytest.raises(ConfigError) as caught:
        TraceProvider(str(path))
    assert str(caught.value) == f"{path}:3: intensity (text not shown) is not a number"


def test_trace_chain_with_a_non_trace_file_fails_at_build_without_echo(tmp_path: Path) -> None:
    from greenai.core.settings import load_settings
    from greenai.providers import build_chain

    path = tmp_path / "passwd"
    path.write_text(f"{SECRET_LINE}\n")
    settings = load_settings(env={}, config_file=None, home=tmp_path / "home")
    with pytest.raises(ConfigError) as caught:
        build_chain(f"trace:{path},egrid:RFCE", settings)
    assert "secret" not in str(caught.value)
