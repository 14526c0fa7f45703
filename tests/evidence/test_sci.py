"""The SCI CSV: exact header, row contents, and concurrent appends from many processes."""

from __future__ import annotations

import csv
import multiprocessing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.domain import EnergyReading, RunRecord, Signal
from greenai.core.errors import InputError
from greenai.evidence.sci import SCI_COLUMNS, append_run

# docs/formats.md §4, copied literally.
HEADER = (
    "run_id,job_id,job_name,command,host,submitted_at,started_at,finished_at,duration_s,exit_code,"
    "policy,decision,delay_s,provider,region,signal,forecast_intensity,actual_intensity,"
    "cpu_kwh,gpu_kwh,ram_kwh,energy_kwh,meter,gpu_model,gpu_count,"
    "operational_g,embodied_g,functional_unit,units,sci_g_per_unit,"
    "counterfactual_intensity,counterfactual_g,saved_g,fallback,"
    "cpu_method,gpu_method,ram_method,estimated,notes"
)
T0 = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.hand_made_evidence  # rows of made-up figures, to test the writing


def record(run_id: str = "r1", command: str = "python train.py --lr 0.1") -> RunRecord:
    energy = EnergyReading(
        T0 + timedelta(minutes=15),
        T0 + timedelta(minutes=45),
        cpu_kwh=0.05,
        gpu_kwh=0.3,
        ram_kwh=0.0000001,
        meter="nvml+codecarbon",
        gpu_model="NVIDIA H100 80GB HBM3",
        gpu_count=1,
    )
    return RunRecord(
        run_id=run_id, job_id="j1", job_name="train", command=command, host="node1",
        submitted_at=T0, started_at=energy.started_at, finished_at=energy.finished_at,
        exit_code=0, policy="threshold", decision="start", provider="uk:13", region="13",
        signal=Signal.AVERAGE, forecast_intensity=180.0, actual_intensity=212.3456,
        energy=energy, operational_g=74.3210987, embodied_g=4.2777, functional_unit="epoch",
        units=2.0, counterfactual_intensity=250.0, counterfactual_g=87.5, fallback=None,
    )  # fmt: skip


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_columns_are_exactly_the_documented_header() -> None:
    assert ",".join(SCI_COLUMNS) == HEADER


def test_header_once_then_rows_with_derived_values(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "evidence.csv"
    append_run(path, record("r1", 'python -c "print(1, 2)"'))
    append_run(path, record("r2"))
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER and lines.count(HEADER) == 1
    first, second = read_rows(path)
    assert first["command"] == 'python -c "print(1, 2)"'
    assert (first["run_id"], second["run_id"]) == ("r1", "r2")
    assert first["submitted_at"] == "2024-05-04T12:00:00Z"
    assert first["started_at"] == "2024-05-04T12:15:00Z"
    assert (first["duration_s"], first["delay_s"], first["exit_code"]) == ("1800", "900", "0")
    assert first["energy_kwh"] == "0.3500001"
    assert first["ram_kwh"] == "0.0000001"
    assert first["actual_intensity"] == "212.346"
    assert first["operational_g"] == "74.321099"
    assert first["saved_g"] == "13.178901"  # 87.5 - 74.3210987
    assert first["sci_g_per_unit"] == "39.299399"  # (74.3210987 + 4.2777) / 2
    assert (first["signal"], first["meter"], first["gpu_count"]) == (
        "average",
        "nvml+codecarbon",
        "1",
    )
    assert (first["units"], first["functional_unit"], first["fallback"]) == ("2", "epoch", "")


def test_unknown_values_are_empty_cells_and_savings_may_be_negative(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    append_run(path, replace(record(), counterfactual_g=None, counterfactual_intensity=None))
    append_run(path, replace(record("r2"), operational_g=float("nan"), actual_intensity=None))
    append_run(path, replace(record("r3"), counterfactual_g=50.0, exit_code=None, fallback="egrid"))
    no_cf, no_signal, worse = read_rows(path)
    assert (no_cf["saved_g"], no_cf["counterfactual_g"]) == ("", "")
    assert (no_signal["operational_g"], no_signal["sci_g_per_unit"], no_signal["saved_g"]) == (
        "", "", "",
    )  # fmt: skip
    assert worse["saved_g"] == "-24.321099"
    assert (worse["exit_code"], worse["fallback"]) == ("", "egrid")


def test_an_empty_file_gets_the_header(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.touch()
    append_run(path, record())
    assert path.read_text().splitlines()[0] == HEADER


def test_a_file_with_another_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("run_id,job_id\nx,y\n")
    with pytest.raises(InputError, match="header"):
        append_run(path, record())
    assert path.read_text() == "run_id,job_id\nx,y\n"


def test_a_torn_last_row_does_not_swallow_the_next(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    append_run(path, record("r1"))
    with path.open("a") as handle:
        handle.write("r-torn,j1,tra")  # a writer killed mid-row
    append_run(path, record("r2"))
    assert path.read_text().splitlines()[-1].startswith("r2,")


def _write_many(path: str, worker: int, count: int) -> None:
    command = f"worker {worker} " + "x" * 20_000  # long rows make interleaving likely
    for i in range(count):
        append_run(Path(path), record(f"w{worker}-{i}", command))


def test_concurrent_processes_never_interleave_rows(tmp_path: Path) -> None:
    path = tmp_path / "evidence.csv"
    workers, per_worker = 4, 25
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_write_many, args=(str(path), w, per_worker)) for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0] * workers
    assert path.read_text().count(HEADER) == 1
    rows = read_rows(path)
    assert len(rows) == workers * per_worker
    assert {row["run_id"] for row in rows} == {
        f"w{w}-{i}" for w in range(workers) for i in range(per_worker)
    }
    for row in rows:
        assert list(row) == list(SCI_COLUMNS) and None not in row.values()
        assert row["command"] == f"worker {row['run_id'][1]} " + "x" * 20_000
        assert row["fallback"] == ""
