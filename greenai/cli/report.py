"""``greenai report``: plots, a summary table and FOOTPRINT.md from the SCI evidence CSV.

Everything is written into a fresh folder beside ``--out`` and moved into place only when
all of it is written, so a failed report leaves no folder that looks complete."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from greenai.cli.app import EXIT_USAGE, app, setting
from greenai.cli.display import stdout_console
from greenai.core.errors import ConfigError
from greenai.core.settings import Settings, load_settings
from greenai.core.time import format_time, parse_time
from greenai.evidence.footprint import footprint_markdown, summary_markdown
from greenai.evidence.report import EvidenceRow, read_evidence, select, totals_by

PLOTS = ("energy_co2_per_job.png", "intensity_runs.png", "cumulative_savings.png")
err = Console(stderr=True, soft_wrap=True)  # messages name paths: never wrapped
Opt = typer.Option


@app.command("report")
def report_command(
    evidence: Annotated[
        Path | None, Opt(help="SCI evidence CSV (default: the settings', HOME/evidence.csv)")
    ] = None,
    since: Annotated[
        str | None,
        Opt(help="only runs that finished at or after this ISO-8601 time (UTC) (default: all)"),
    ] = None,
    project: Annotated[
        str | None,
        Opt(
            help="only runs of jobs labelled PROJECT. The CSV has no project column: the job "
            "ids are read from the daemon's database (--database-url, default HOME/greenai.db), "
            "which must exist"
        ),
    ] = None,
    out: Annotated[Path, Opt(help="folder for the PNGs, summary.md and FOOTPRINT.md")] = Path(
        "artifacts/report"
    ),
    home: Annotated[
        Path | None, Opt(help="state folder (evidence, database)" + setting("home"))
    ] = None,
    database_url: Annotated[
        str | None, Opt(help="SQLAlchemy URL, for --project (default: sqlite:///HOME/greenai.db)")
    ] = None,
) -> None:
    """Plots, a summary table and FOOTPRINT.md (the SCI method as applied) from the evidence."""
    try:
        settings = load_settings(home=home, evidence_file=evidence, database_url=database_url)
        path = settings.evidence_path
        loaded = read_evidence(path)
        job_ids = _project_jobs(settings, project) if project is not None else None
        rows = select(loaded.rows, _since(since), job_ids)
    except ConfigError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    scope = _scope(path, since, project, len(loaded.rows), len(rows), loaded.torn_lines)
    if not rows:
        err.print(f"greenai report: no runs to report. {scope}", highlight=False)
        raise typer.Exit(0)
    try:
        _write(out, rows, settings, scope)
    except OSError as exc:
        err.print(f"[red]error:[/] cannot write the report into {out}: {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    _print_summary(rows, out)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ConfigError(f"--since: {text!r} is not an ISO-8601 date or time") from exc


def _project_jobs(settings: Settings, project: str) -> set[str]:
    from greenai.storage.database import make_engine
    from greenai.storage.store import Store

    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ConfigError(
            f"--project needs the daemon's database, and {url} does not exist "
            "(give --database-url or --home)"
        )
    engine = make_engine(url)
    try:
        return Store(engine).job_ids_of_project(project)
    finally:
        engine.dispose()


def _scope(
    path: Path, since: str | None, project: str | None, read: int, kept: int, torn: tuple[int, ...]
) -> str:
    parts = [f"Evidence: `{path}`, {read} rows read, {kept} reported"]
    if since is not None:
        parts.append(f"finished since {since}")
    if project is not None:
        parts.append(f"of project `{project}`")
    text = ", ".join(parts) + "."
    if torn:
        text += f" Skipped as torn (wrong number of fields): lines {', '.join(map(str, torn))}."
    return text


def _write(out: Path, rows: list[EvidenceRow], settings: Settings, scope: str) -> None:
    """Everything into a temporary folder beside ``out``, then moved into ``out``."""
    from greenai.evidence.report_plots import (
        plot_cumulative_savings,
        plot_energy_and_co2,
        plot_intensity_runs,
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        plot_energy_and_co2(rows, staging / PLOTS[0])
        plot_intensity_runs(rows, staging / PLOTS[1])
        plot_cumulative_savings(rows, staging / PLOTS[2])
        (staging / "summary.md").write_text(summary_markdown(rows, scope), encoding="utf-8")
        (staging / "FOOTPRINT.md").write_text(
            footprint_markdown(rows, settings, scope), encoding="utf-8"
        )
        out.mkdir(exist_ok=True)
        for written in sorted(staging.iterdir()):
            written.replace(out / written.name)
    finally:
        shutil.rmtree(staging)


def _print_summary(rows: list[EvidenceRow], out: Path) -> None:
    console = stdout_console()
    table = Table(title="greenai report", title_justify="left")
    for column in ("signal", "runs", "energy kWh", "operational g", "embodied g", "saved g"):
        table.add_column(column, justify="left" if column == "signal" else "right")
    for (signal,), totals in totals_by(rows, "signal").items():
        table.add_row(
            signal,
            str(totals.runs),
            f"{totals.energy_kwh:.3f}",
            f"{totals.operational_g:.1f}",
            f"{totals.embodied_g:.1f}",
            f"{totals.saved_g:.1f}",
        )
    console.print(table)
    first = format_time(min(r.started_at for r in rows))
    last = format_time(max(r.finished_at for r in rows))
    console.print(f"runs from {first} to {last}; written to {out}/", highlight=False)
