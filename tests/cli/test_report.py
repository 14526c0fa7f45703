"""`greenai report` on the evidence of a day of simulated daemon work: the real engine over a
real store and the daemon's EvidenceFiles, a fake executor and fake intensity sources on a
frozen clock; the report is checked against sums computed here from the CSV itself."""

from __future__ import annotations

import csv
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from greenai.cli import app
from greenai.core.domain import EnergyReading, Job, Signal
from greenai.core.settings import load_settings
from greenai.daemon import EvidenceFiles
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.database import make_engine, upgrade
from greenai.storage.records import Submission
from greenai.storage.store import Store
from tests.daemon.helpers import FakeSource, forecast
from tests.executors.fake import FakeExecutor
from tests.fakes import FrozenClock

DAY = datetime(2023, 5, 4, 0, 0, tzinfo=UTC)
MARGINAL = "watttime:CAISO_NORTH"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def daily_curve(hours: int, low: float, high: float) -> list[float]:
    """Half-hourly intensity, cleanest around 03:00 and dirtiest around 15:00."""
    mid, amp = (low + high) / 2, (high - low) / 2
    return [mid - amp * math.cos(2 * math.pi * (i / 2 - 3) / 24) for i in range(hours * 2)]


@dataclass(frozen=True)
class Day:
    evidence: Path
    database_url: str
    home: Path


def _sources() -> dict[str, FakeSource]:
    average = forecast(daily_curve(60, 80.0, 320.0), start=DAY, source="fake:13")
    marginal = replace(
        forecast(daily_curve(60, 400.0, 700.0), start=DAY, source=MARGINAL),
        signal=Signal.MARGINAL,
        region="CAISO_NORTH",
    )
    return {"fake:13": FakeSource(average), MARGINAL: FakeSource(marginal)}


def _reading(index: int, start: datetime, end: datetime) -> EnergyReading | None:
    """Every third run measured by NVML, every third by NVML and CodeCarbon, the rest not
    measured (the engine stands in the estimate meter's model)."""
    hours = (end - start).total_seconds() / 3600
    if index % 3 == 0:
        return EnergyReading(start, end, gpu_kwh=0.35 * hours, meter="nvml", gpu_count=1)
    if index % 3 == 1:
        return EnergyReading(
            start, end, cpu_kwh=0.05 * hours, gpu_kwh=0.3 * hours, meter="nvml+codecarbon",
            gpu_count=1,
        )  # fmt: skip
    return None


def simulate_day(folder: Path) -> Day:
    """Twelve jobs submitted every two hours over a day (two projects, one on a marginal
    source), planned by the window policy, each run ending after its duration."""
    url = f"sqlite:///{folder / 'greenai.db'}"
    engine = make_engine(url)
    upgrade(engine)
    store, clock = Store(engine), FrozenClock(DAY)
    settings = load_settings(env={}, home=folder, power_watts=400)
    files = EvidenceFiles(settings)
    executor = FakeExecutor(clock)
    sources = _sources()
    config = EngineConfig((0, 1), folder / "runs", default_provider="fake:13", settings=settings)
    loop = Engine(store, executor, config, lambda spec: sources[spec], files)  # type: ignore[arg-type]
    durations: dict[str, timedelta] = {}
    for minute in range(0, 40 * 60, 10):
        now = DAY + timedelta(minutes=minute)
        if minute % 120 == 0 and minute < 24 * 60:
            durations[_submit(store, len(durations), now)] = timedelta(hours=1 + len(durations) % 2)
        clock.advance((now - clock.now()).total_seconds())
        for index, job_id in enumerate(sorted(durations)):
            if job_id in executor.running():
                started = executor.run(job_id).started_at
                if now - started >= durations[job_id]:
                    executor.finish(job_id, 0, reading=_reading(index, started, now))
        loop.tick(now)
    engine.dispose()
    return Day(settings.evidence_path, url, folder)


def _submit(store: Store, index: int, now: datetime) -> str:
    job = Job(
        f"job-{index:02d}",
        now,
        timedelta(hours=1 + index % 2),
        now + timedelta(hours=14),
        name=f"train-{index:02d}",
        command=("python", "train.py"),
        project="nlp" if index % 2 == 0 else "vision",
        provider=MARGINAL if index == 5 else None,
    )
    record, _ = store.submit(Submission(job), now)
    return record.id


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    return simulate_day(tmp_path_factory.mktemp("day"))


@pytest.fixture(scope="module")
def rows(day: Day) -> list[dict[str, str]]:
    with day.evidence.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def report(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["report", *args])
    return result.exit_code, result.stdout, result.stderr


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def table(markdown: str, heading: str) -> Iterator[list[str]]:
    """The body lines of the Markdown table under ``heading``, as cells."""
    lines = markdown.split(f"## {heading}\n\n", 1)[1].splitlines()
    for line in lines[2:]:
        if not line.startswith("|"):
            return
        yield [cell.strip() for cell in line.strip("|").split("|")]


def test_the_day_produced_runs_of_every_kind(rows: list[dict[str, str]]) -> None:
    assert len(rows) == 12
    assert {r["meter"] for r in rows} == {"nvml", "nvml+codecarbon", "estimate"}
    assert {r["signal"] for r in rows} == {"average", "marginal"}
    assert all(r["operational_g"] and r["counterfactual_g"] for r in rows)


def test_the_days_evidence_passes_the_audit(day: Day, rows: list[dict[str, str]]) -> None:
    result = CliRunner().invoke(app, ["audit", "--evidence", str(day.evidence), "--strict"])
    assert result.exit_code == 0, result.output
    assert f"{len(rows)} rows, {len(rows)} reproduce within 0.001" in result.output
    assert {r["gpu_method"] for r in rows} >= {"nvml", "declared"}  # the stand-in: declared 400 W


def test_report_writes_plots_summary_and_footprint(
    day: Day, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    code, stdout, stderr = report("--evidence", str(day.evidence), "--out", str(out))
    assert code == 0, stderr
    assert "greenai report" in stdout and "average" in stdout and "marginal" in stdout
    for name in ("energy_co2_per_job.png", "intensity_runs.png", "cumulative_savings.png"):
        width, height = png_size(out / name)
        assert 1000 <= width <= 1600 and 500 <= height <= 1000
        assert (out / name).stat().st_size > 20_000  # drawn, not blank
    assert sorted(p.name for p in out.iterdir()) == [
        "FOOTPRINT.md", "cumulative_savings.png", "energy_co2_per_job.png",
        "intensity_runs.png", "summary.md",
    ]  # fmt: skip


def test_summary_totals_are_the_sums_of_the_csv(
    day: Day, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    assert report("--evidence", str(day.evidence), "--out", str(out))[0] == 0
    summary = (out / "summary.md").read_text(encoding="utf-8")
    by_signal = {cells[0]: cells[1:] for cells in table(summary, "By signal")}
    for signal in ("average", "marginal"):
        mine = [r for r in rows if r["signal"] == signal]
        expected = [
            str(len(mine)),
            f"{sum(float(r['energy_kwh']) for r in mine):.6f}",
            *(f"{sum(float(r[c]) for r in mine):.3f}"
              for c in ("operational_g", "embodied_g", "counterfactual_g", "saved_g")),
        ]  # fmt: skip
        assert by_signal[signal] == expected
    by_meter = {(c[0], c[1]): int(c[2]) for c in table(summary, "By signal and meter")}
    assert sum(by_meter.values()) == len(rows)
    assert by_meter[("average", "estimate")] == sum(
        r["meter"] == "estimate" and r["signal"] == "average" for r in rows
    )


def test_footprint_names_exactly_what_the_evidence_holds(
    day: Day, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    assert report("--evidence", str(day.evidence), "--out", str(out))[0] == 0
    text = (out / "FOOTPRINT.md").read_text(encoding="utf-8")
    meters_section = text.split("Meters in these rows:\n\n", 1)[1].split("\n\n", 1)[0]
    named = {line.split("`")[1] for line in meters_section.splitlines() if line.startswith("- `")}
    assert named == {r["meter"] for r in rows}
    sources = {f"{r['provider']}:{r['region']}" for r in rows}
    assert sources == {"fake:13", MARGINAL}
    for source in sources:
        assert f"`{source}`" in text
    assert "`rapl`" not in text and "`nvml-power`" not in text
    estimated = sum(r["meter"] == "estimate" for r in rows)
    assert f"Estimates: the energy of {estimated} runs comes" in text
    assert f"{len(rows)} of {len(rows)} rows' `embodied_g` agree" in text
    assert "SCI = (E x I + M) / R" in text and "Shared nodes" in text


def test_since_keeps_runs_that_finished_after_it(
    day: Day, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    since = "2023-05-04T18:00:00Z"
    assert report("--evidence", str(day.evidence), "--since", since, "--out", str(out))[0] == 0
    kept = [r for r in rows if r["finished_at"] >= since]
    assert 0 < len(kept) < len(rows)
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert sum(int(cells[1]) for cells in table(summary, "By signal")) == len(kept)
    assert f"{len(rows)} rows read, {len(kept)} reported, finished since {since}" in summary


def test_project_filters_through_the_daemon_database(
    day: Day, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    args = ("--evidence", str(day.evidence), "--database-url", day.database_url)
    assert report(*args, "--project", "vision", "--out", str(out))[0] == 0
    vision = [r for r in rows if int(r["job_id"].split("-")[1]) % 2 == 1]
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert sum(int(cells[1]) for cells in table(summary, "By signal")) == len(vision) == 6
    assert "of project `vision`" in summary


def test_project_without_a_database_is_a_usage_error(day: Day, tmp_path: Path) -> None:
    code, _, stderr = report(
        "--evidence", str(day.evidence), "--home", str(tmp_path / "nowhere"),
        "--project", "nlp", "--out", str(tmp_path / "report"),
    )  # fmt: skip
    assert code == 2 and "--project needs the daemon's database" in stderr
    assert not (tmp_path / "report").exists()


def test_no_rows_after_filtering_is_said_plainly(day: Day, tmp_path: Path) -> None:
    out = tmp_path / "report"
    code, _, stderr = report(
        "--evidence", str(day.evidence), "--since", "2030-01-01", "--out", str(out)
    )
    assert code == 0 and "no runs to report" in stderr
    assert not out.exists()


def _broken(tmp_path: Path, day: Day, line: int, column: str, value: str) -> Path:
    with day.evidence.open(encoding="utf-8", newline="") as handle:
        table_rows = list(csv.reader(handle))
    table_rows[line - 1][table_rows[0].index(column)] = value
    path = tmp_path / "broken.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table_rows)
    return path


@pytest.mark.parametrize(
    ("line", "column", "value", "problem"),
    [
        (4, "energy_kwh", "lots", "energy_kwh: 'lots' is not a number"),
        (7, "started_at", "yesterday", "started_at: 'yesterday' is not an ISO-8601 time"),
        (3, "embodied_g", "", "embodied_g: empty, but this column is always known"),
        (5, "signal", "mean", "signal: 'mean' is not average or marginal"),
        (1, "fallback", "fall_back", "header is not the SCI columns"),
    ],
)
def test_bad_evidence_names_file_line_and_field(
    day: Day, tmp_path: Path, line: int, column: str, value: str, problem: str
) -> None:
    path = _broken(tmp_path, day, line, column, value)
    out = tmp_path / "report"
    code, stdout, stderr = report("--evidence", str(path), "--out", str(out))
    assert code == 2 and stdout == ""
    assert f"{path}:{line}: {problem}" in " ".join(stderr.split())
    assert not out.exists()


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "none.csv"
    code, _, stderr = report("--evidence", str(path), "--out", str(tmp_path / "report"))
    assert code == 2 and f"{path}: no such evidence file" in " ".join(stderr.split())


def test_a_torn_last_line_is_skipped_and_said(day: Day, tmp_path: Path) -> None:
    path = tmp_path / "torn.csv"
    path.write_text(day.evidence.read_text(encoding="utf-8") + "abc,job-99,tr", encoding="utf-8")
    out = tmp_path / "report"
    assert report("--evidence", str(path), "--out", str(out))[0] == 0
    assert "Skipped as torn (wrong number of fields): lines 14." in (out / "summary.md").read_text(
        encoding="utf-8"
    )


def test_a_failed_plot_leaves_no_output_folder(
    day: Day, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from greenai.evidence import report_plots

    def broken(*_args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_plots, "plot_cumulative_savings", broken)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--evidence", str(day.evidence), "--out", str(out)])
    assert isinstance(result.exception, RuntimeError)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_out_path_that_is_a_file_is_a_usage_error(day: Day, tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.write_text("not a folder", encoding="utf-8")
    code, _, stderr = report("--evidence", str(day.evidence), "--out", str(out))
    assert code == 2 and "cannot write the report into" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
