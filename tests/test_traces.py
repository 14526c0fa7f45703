"""The trace loader: real files load exactly; every defect names file, line and problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from greenai.core.errors import InputError
from greenai.formats.traces import load_trace

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data"


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_gb_year_loads_with_exact_grid() -> None:
    trace = load_trace(DATA / "gb-2023-hourly.csv")
    assert len(trace) == 8760
    assert trace.name == "gb-2023-hourly.csv"
    assert trace.start == datetime(2023, 1, 1, tzinfo=UTC)
    assert trace.step == timedelta(hours=1)
    assert trace.end == datetime(2024, 1, 1, tzinfo=UTC)
    assert trace.forecasts is None
    assert trace.actual[:2].tolist() == [62.55, 65.09]
    assert trace.actual.dtype == np.float64


def test_electricity_maps_export_matches_trace_format() -> None:
    plain = load_trace(DATA / "gb-2023-hourly.csv")
    export = load_trace(DATA / "GB_2023_hourly.electricitymaps.csv")
    assert export.start == plain.start and export.step == plain.step
    np.testing.assert_array_equal(export.actual, plain.actual)
    lca = load_trace(DATA / "GB_2023_hourly.electricitymaps.csv", column="LCA")
    assert lca.actual[0] == pytest.approx(91.44)
    assert lca.column == "LCA"


def test_caiso_forecast_columns_are_indexed_by_issue_row_and_lead() -> None:
    trace = load_trace(DATA / "caiso-pge-moer-2021-07.csv")
    assert len(trace) == 9504
    assert trace.step == timedelta(minutes=5)
    assert trace.forecasts is not None and trace.forecasts.shape == (9504, 36)
    assert trace.horizon_steps == 36
    # Row 0 issued f1 = 587.3 for the step starting at row 1; row 1 issued f1 = 541.4.
    assert trace.forecasts[0, 0] == pytest.approx(587.3)
    assert trace.forecasts[1, 0] == pytest.approx(541.4)
    assert trace.forecasts[0, 35] == pytest.approx(433.1)


def test_timestamp_and_index_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,intensity\n2023-01-01T00:00:00Z,1\n2023-01-01T00:30:00Z,2\n")
    trace = load_trace(path)
    assert trace.step == timedelta(minutes=30)
    assert trace.timestamp(1) == datetime(2023, 1, 1, 0, 30, tzinfo=UTC)
    assert trace.index_at(datetime(2023, 1, 1, 0, 59, tzinfo=UTC)) == 1
    assert trace.seconds(trace.timestamp(1)) == 1800.0
    with pytest.raises(ValueError):
        trace.index_at(trace.end)


def test_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    text = "timestamp,intensity\n2023-01-01T01:00:00+01:00,5\n2023-01-01T01:00:00Z,6\n"
    trace = load_trace(write(tmp_path, text))
    assert trace.start == datetime(2023, 1, 1, tzinfo=UTC)
    assert trace.step == timedelta(hours=1)


HEADER = "timestamp,intensity\n"
T0, T1, T2, T3 = (f"2023-01-01T0{h}:00:00Z" for h in range(4))


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        (f"{T0},1\n{T1},2\n{T3},3\n", 4, "gap: 1 step(s) missing"),
        (f"{T0},1\n{T1},2\n{T1},3\n", 4, "duplicate timestamp"),
        (f"{T0},1\n{T0},2\n", 3, "duplicate timestamp"),
        (f"{T0},1\n{T2},2\n{T1},3\n", 4, "before the previous row"),
        (f"{T0},1\n{T1},x\n", 3, "'x' is not a number"),
        (f"{T0},1\n{T1},-4\n", 3, "non-negative"),
        (f"{T0},1\n{T1},nan\n", 3, "finite"),
        (f"{T0},1\n{T1},\n", 3, "empty intensity"),
        (f"{T0},1\n,2\n", 3, "empty timestamp"),
        (f"{T0},1\nyesterday,2\n", 3, "not ISO-8601"),
        (f"{T0},1\n{T1}\n", 3, "expected at least 2 columns"),
        (f"{T0},1\n\n{T1},2\n", 3, "empty line"),
        (f"{T0},1\n{T1},2\n2023-01-01T02:30:00Z,3\n", 4, "irregular step"),
        (f"{T0},1\n", 2, "at least two rows"),
        ("", 2, "no data rows"),
    ],
)
def test_defects_name_file_line_and_problem(
    tmp_path: Path, body: str, line: int, problem: str
) -> None:
    path = write(tmp_path, HEADER + body)
    with pytest.raises(InputError) as caught:
        load_trace(path)
    assert caught.value.line == line
    assert problem in caught.value.problem
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("time,value", "header must start with 'timestamp,intensity'"),
        ("timestamp,intensity,f2", "f1..f1 in order"),
        ("Datetime (UTC),Country", "without column"),
    ],
)
def test_bad_headers(tmp_path: Path, header: str, problem: str) -> None:
    path = write(tmp_path, f"{header}\n{T0},1,2\n{T1},1,2\n")
    with pytest.raises(InputError) as caught:
        load_trace(path)
    assert caught.value.line == 1
    assert problem in caught.value.problem


def test_empty_forecast_cell_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, f"timestamp,intensity,f1\n{T0},1,2\n{T1},1,\n")
    with pytest.raises(InputError, match=r"t\.csv:3: empty column 3"):
        load_trace(path)


def test_trailing_blank_lines_are_fine_and_missing_file_is_an_input_error(
    tmp_path: Path,
) -> None:
    trace = load_trace(write(tmp_path, f"{HEADER}{T0},1\n{T1},2\n\n\n"))
    assert len(trace) == 2
    with pytest.raises(InputError, match="cannot read trace"):
        load_trace(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="empty file"):
        load_trace(write(tmp_path, "", "empty.csv"))
