"""Workload files: deadlines follow docs/formats.md §2 and every defect names file, line, field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.domain import Job
from greenai.core.errors import InputError
from greenai.formats.workload import load_workload, read_workload, write_workload

FULL = "id,submit,duration_min,max_delay_min,power_kw,interruptible,gpus,flexible\n"
BASIC = "id,submit,duration_min,max_delay_min,power_kw\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "w.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_row_from_the_format_document(tmp_path: Path) -> None:
    path = write(tmp_path, FULL + "j0,2023-03-01T09:17:00Z,360,1440,5.6,0,8,1\n")
    [job] = load_workload(path)
    submit = datetime(2023, 3, 1, 9, 17, tzinfo=UTC)
    assert job == Job(
        "j0",
        submit,
        timedelta(hours=6),
        submit + timedelta(minutes=1440 + 360),
        name="j0",
        power_kw=5.6,
        interruptible=False,
        gpus=8,
        flexible=True,
    )
    assert job.latest_start == submit + timedelta(hours=24)


def test_optional_columns_default_and_lines_are_kept(tmp_path: Path) -> None:
    text = BASIC + "a,2023-03-01T00:00:00Z,30,0,1\n\nb,2023-03-01T01:00:00+01:00,1.5,10,0\n"
    rows = read_workload(write(tmp_path, text))
    assert [row.line for row in rows] == [2, 4]
    first, second = (row.job for row in rows)
    assert (first.interruptible, first.gpus, first.flexible) == (False, 1, True)
    assert first.deadline == first.submitted_at + timedelta(minutes=30)
    assert second.submitted_at == datetime(2023, 3, 1, 0, 0, tzinfo=UTC)
    assert second.duration == timedelta(seconds=90)


def test_round_trip_through_write_workload(tmp_path: Path) -> None:
    submit = datetime(2023, 1, 2, 3, 4, tzinfo=UTC)
    jobs = [
        Job(
            "x",
            submit,
            timedelta(minutes=45),
            submit + timedelta(minutes=100),
            power_kw=2.5,
            interruptible=True,
            gpus=4,
            flexible=False,
            name="x",
        )
    ]
    path = tmp_path / "out.csv"
    write_workload(path, jobs)
    assert load_workload(path) == jobs


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("j,2023-03-01T00:00:00Z,0,0,1", "duration_min '0' must be finite and positive"),
        ("j,2023-03-01T00:00:00Z,ten,0,1", "duration_min 'ten' is not a number"),
        ("j,2023-03-01T00:00:00Z,10,-1,1", "max_delay_min '-1' must be finite and non-negative"),
        ("j,2023-03-01T00:00:00Z,10,0,inf", "power_kw 'inf' must be finite"),
        ("j,noon,10,0,1", "submit 'noon' is not ISO-8601"),
        (",2023-03-01T00:00:00Z,10,0,1", "empty id"),
        ("j,2023-03-01T00:00:00Z,10,0", "expected 5 fields, got 4"),
    ],
)
def test_bad_rows_name_line_and_field(tmp_path: Path, row: str, problem: str) -> None:
    path = write(tmp_path, BASIC + "ok,2023-03-01T00:00:00Z,10,0,1\n" + row + "\n")
    with pytest.raises(InputError) as caught:
        load_workload(path)
    assert caught.value.line == 3
    assert problem in caught.value.problem
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("interruptible", "yes", "interruptible 'yes' must be 0 or 1"),
        ("flexible", "2", "flexible '2' must be 0 or 1"),
        ("gpus", "0", "gpus '0' must be a whole number"),
        ("gpus", "1.5", "gpus '1.5' must be a whole number"),
    ],
)
def test_bad_optional_fields(tmp_path: Path, field: str, value: str, problem: str) -> None:
    values = {"interruptible": "0", "gpus": "1", "flexible": "1", field: value}
    row = f"j,2023-03-01T00:00:00Z,10,0,1,{values['interruptible']},{values['gpus']},"
    path = write(tmp_path, FULL + row + values["flexible"] + "\n")
    with pytest.raises(InputError, match=problem):
        load_workload(path)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("id,submit,duration_min,power_kw", "missing column(s): max_delay_min"),
        (BASIC.strip() + ",interruptable", "unknown column(s): interruptable"),
        (BASIC.strip() + ",gpus,gpus", "a column appears twice"),
        ("", "empty file"),
    ],
)
def test_bad_headers(tmp_path: Path, header: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        load_workload(write(tmp_path, header + "\n" if header else ""))
    assert caught.value.line == 1
    assert problem in caught.value.problem


def test_duplicate_ids_and_missing_file(tmp_path: Path) -> None:
    text = BASIC + "a,2023-03-01T00:00:00Z,10,0,1\na,2023-03-01T00:00:00Z,10,0,1\n"
    with pytest.raises(InputError, match=r"w\.csv:3: duplicate id 'a' \(first on line 2\)"):
        load_workload(write(tmp_path, text))
    with pytest.raises(InputError, match="cannot read workload"):
        load_workload(tmp_path / "absent.csv")
