"""greenai audit: every row recomputed from the inputs recorded beside it (issue 9)."""

from __future__ import annotations

import csv
import json
import logging
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from greenai.cli import app
from greenai.core.domain import Action, Decision, EnergyReading, Forecast, Job, Signal
from greenai.core.errors import InputError
from greenai.core.settings import load_settings
from greenai.evidence import FinishedRun, account_run, append_run
from greenai.evidence.audit import audit_file, recompute
from greenai.evidence.inputs import inputs_path, parse_inputs, run_inputs
from greenai.evidence.report import read_evidence
from greenai.evidence.sci import HEADER_V1, SCI_COLUMNS, SCI_COLUMNS_V1, sci_row

NOON = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)
SETTINGS = load_settings(env={}, functional_unit="image", units=3)
DERIVED = (
    "duration_s", "delay_s", "energy_kwh", "actual_intensity", "operational_g", "embodied_g",
    "sci_g_per_unit", "counterfactual_intensity", "counterfactual_g", "saved_g", "gpu_kwh",
)  # fmt: skip


def history(values: tuple[float, ...], *, start: datetime = NOON, **kw: object) -> Forecast:
    return Forecast(start, timedelta(minutes=30), values, Signal.AVERAGE, "uk:13", "13", start,
                    **kw)  # type: ignore[arg-type]  # fmt: skip


def reading(start: datetime, minutes: float, kwh: float, *, shape: int = 5) -> EnergyReading:
    """A GPU reading whose power rises over the run (a convex cumulative timeline)."""
    end = start + timedelta(minutes=minutes)
    samples = tuple(
        (start + (end - start) * i / shape, kwh * (i / shape) ** 2) for i in range(shape + 1)
    )
    return EnergyReading(start, end, gpu_kwh=kwh, cpu_kwh=0.01, ram_kwh=0.002, meter="nvml+rapl",
                         gpu_model="H100", gpu_count=2, samples=samples)  # fmt: skip


def finished(run_id: str, energy: EnergyReading, submitted: datetime = NOON) -> FinishedRun:
    job = Job(run_id, submitted, energy.finished_at - energy.started_at,
              submitted + timedelta(hours=12), command=("python", "train.py"))  # fmt: skip
    decision = Decision(energy.started_at, run_id, "window", Action.START, "cleanest window",
                        forecast_intensity=120.0)  # fmt: skip
    return FinishedRun(run_id, job, decision, energy, 0, "node1")


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_runs(path: Path) -> None:
    """Runs across grid boundaries, deferred, without a counterfactual, without history."""
    grid = history((210.0, 95.5, 130.25, 300.0, 80.0, 140.0))
    runs = [
        (finished("deferred", reading(NOON + timedelta(minutes=50), 70, 0.9)), grid),
        (finished("at-submit", reading(NOON + timedelta(minutes=5), 1, 0.0004)), grid),
        (finished("late-grid", reading(NOON + timedelta(hours=2), 20, 0.3)),
         history((140.0, 150.0), start=NOON + timedelta(hours=2))),
        (finished("no-history", reading(NOON, 10, 0.1)), None),
        (finished("forecast", reading(NOON, 10, 0.1)), replace(grid, forecast_only=True)),
    ]  # fmt: skip
    for run, grid_used in runs:
        append_run(path, account_run(run, grid_used, SETTINGS))


def test_rows_accounted_by_greenai_reproduce(tmp_path: Path) -> None:
    path = tmp_path / "evidence.csv"
    write_runs(path)
    result = audit_file(path)
    assert (result.rows, result.reproduced, result.discrepancies) == (5, 5, [])
    assert result.without_inputs == []
    rows = {row["run_id"]: row for row in read_rows(path)}
    assert rows["late-grid"]["counterfactual_g"] == ""  # the grid starts 2 h after submit
    assert rows["no-history"]["operational_g"] == ""
    assert rows["forecast"]["estimated"] == "actual_intensity;counterfactual_intensity"


def test_the_audit_agrees_with_the_accounting_on_random_runs(tmp_path: Path) -> None:
    rng = random.Random(9)
    for number in range(40):
        values = tuple(rng.uniform(20, 500) for _ in range(12))
        start = NOON + timedelta(seconds=rng.uniform(0, 3 * 3600))
        energy = reading(start, rng.uniform(0.01, 200), rng.uniform(0, 2), shape=rng.randint(1, 9))
        submitted = NOON + timedelta(seconds=rng.uniform(0, (start - NOON).total_seconds()))
        record = account_run(finished(f"r{number}", energy, submitted), history(values), SETTINGS)
        again = recompute(parse_inputs(json.loads(json.dumps(run_inputs(record)))))
        expected = {
            "operational_g": record.operational_g,
            "actual_intensity": record.actual_intensity,
            "counterfactual_g": record.counterfactual_g,
            "counterfactual_intensity": record.counterfactual_intensity,
            "embodied_g": record.embodied_g,
        }
        for column, value in expected.items():
            assert again[column] == pytest.approx(value, rel=1e-9, abs=1e-12), (number, column)


@pytest.mark.hand_made_evidence  # the file is tampered with on purpose
@pytest.mark.parametrize("column", DERIVED)
def test_a_changed_cell_is_found_and_named(tmp_path: Path, column: str) -> None:
    path = tmp_path / "evidence.csv"
    write_runs(path)
    rows = read_rows(path)
    target = rows[0]
    target[column] = f"{float(target[column]) * 1.002 + 0.001:.9f}"  # 0.2% off, past rounding
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, SCI_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    result = audit_file(path)
    assert [(d.line, d.column) for d in result.discrepancies] == [(2, column)]
    assert result.reproduced == 4


@pytest.mark.hand_made_evidence
def test_a_figure_the_inputs_cannot_support_is_off(tmp_path: Path) -> None:
    path = tmp_path / "evidence.csv"
    write_runs(path)
    text = path.read_text().splitlines()
    no_history = next(i for i, line in enumerate(text) if line.startswith("no-history,"))
    cells = text[no_history].split(",")
    cells[SCI_COLUMNS.index("operational_g")] = "12.5"
    text[no_history] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    [found] = audit_file(path).discrepancies
    assert (found.column, found.cell, found.recomputed) == ("operational_g", "12.5", None)


@pytest.mark.hand_made_evidence
def test_changed_inputs_are_found(tmp_path: Path) -> None:
    path = tmp_path / "evidence.csv"
    write_runs(path)
    lines = inputs_path(path).read_text().splitlines()
    first = json.loads(lines[0])
    first["history"]["values"][2] += 5.0  # the half hour the deferred run mostly used
    lines[0] = json.dumps(first)
    inputs_path(path).write_text("\n".join(lines) + "\n")
    columns = {d.column for d in audit_file(path).discrepancies}
    assert {"operational_g", "actual_intensity", "saved_g", "sci_g_per_unit"} <= columns


def test_rows_without_inputs_fail_only_a_strict_audit(tmp_path: Path) -> None:
    path = tmp_path / "evidence.csv"
    write_runs(path)
    lines = inputs_path(path).read_text().splitlines()
    inputs_path(path).write_text("\n".join(lines[1:]) + "\n")  # as if written by greenai 0.1
    runner = CliRunner()
    plain = runner.invoke(app, ["audit", "--evidence", str(path)])
    assert plain.exit_code == 0, plain.output
    assert "5 rows, 4 reproduce within 0.001" in plain.output
    assert "without inputs (not recomputed): lines 2 (deferred)" in plain.output
    strict = runner.invoke(app, ["audit", "--evidence", str(path), "--strict", "--json"])
    assert strict.exit_code == 1
    assert json.loads(strict.output)["without_inputs"] == [{"line": 2, "run_id": "deferred"}]


@pytest.mark.hand_made_evidence
def test_the_cli_exits_1_naming_the_cell_and_2_on_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "evidence.csv"
    write_runs(path)
    path.write_text(path.read_text().replace(",H100,2,", ",H100,3,", 1))  # gpu_count edited
    result = CliRunner().invoke(app, ["audit", "--evidence", str(path)])
    assert result.exit_code == 1
    assert "gpu_count" in result.output and "1 off" in result.output
    missing = CliRunner().invoke(app, ["audit", "--evidence", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2
    assert "no such evidence file" in missing.output


@pytest.mark.hand_made_evidence  # ends with an inputs file that cannot be read
def test_a_torn_last_inputs_line_is_skipped_and_a_bad_one_named(tmp_path: Path) -> None:
    path = tmp_path / "evidence.csv"
    write_runs(path)
    with inputs_path(path).open("a") as handle:
        handle.write('{"version": 1, "run_id": "kil')  # its writer was killed mid-line
    assert audit_file(path).reproduced == 5
    inputs_path(path).write_text('{"version": 1}\n' + inputs_path(path).read_text())
    with pytest.raises(InputError, match=r"evidence.inputs.jsonl:1: not an inputs record"):
        audit_file(path)


def test_a_file_begun_before_the_provenance_columns_keeps_its_layout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "evidence.csv"
    path.write_text(HEADER_V1)
    record = account_run(finished("new", reading(NOON, 30, 0.2)), history((100.0,)), SETTINGS)
    with caplog.at_level(logging.WARNING):
        append_run(path, record)
        append_run(path, replace(record, run_id="newer"))
    assert sum("begun before the columns" in r.getMessage() for r in caplog.records) <= 1
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[0] == HEADER_V1.strip()
    cells = next(csv.reader([lines[1]]))
    assert cells == [sci_row(record)[column] for column in SCI_COLUMNS_V1]
    assert [row.run_id for row in read_evidence(path).rows] == ["new", "newer"]
    assert audit_file(path).reproduced == 2


def test_the_daemon_stores_the_inputs_with_the_row_it_may_append_later(tmp_path: Path) -> None:
    """A stored entry (cells + inputs) appended after a crash still leaves inputs beside it."""
    from greenai.evidence.sci import append_row, evidence_entry

    record = account_run(finished("stored", reading(NOON, 30, 0.2)), history((100.0,)), SETTINGS)
    entry = json.loads(json.dumps(evidence_entry(record)))  # through the database's JSON
    path = tmp_path / "evidence.csv"
    assert append_row(path, entry, unless_present=True)
    assert not append_row(path, entry, unless_present=True)
    assert audit_file(path).reproduced == 1
    assert len(inputs_path(path).read_text().splitlines()) == 1
