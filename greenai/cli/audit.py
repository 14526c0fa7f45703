"""``greenai audit``: recompute every evidence row from its recorded inputs.

Exit 0 when every row with inputs reproduces, 1 when any is off (or, with ``--strict``, has
no inputs), 2 when the files cannot be read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from greenai.cli.app import EXIT_USAGE, app, setting
from greenai.cli.display import stdout_console
from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings
from greenai.evidence.audit import DEFAULT_TOLERANCE, AuditResult, audit_file

EXIT_OFF = 1
LISTED = 20  # discrepancies and rows without inputs shown before "and N more"
err = Console(stderr=True, soft_wrap=True)  # messages name paths: never wrapped
Opt = typer.Option


@app.command("audit")
def audit_command(
    evidence: Annotated[
        Path | None, Opt(help="SCI evidence CSV (default: the settings', HOME/evidence.csv)")
    ] = None,
    inputs: Annotated[
        Path | None, Opt(help="its inputs file (default: EVIDENCE's name with .inputs.jsonl)")
    ] = None,
    tolerance: Annotated[
        float, Opt(min=0.0, help="relative difference a recomputed figure may have")
    ] = DEFAULT_TOLERANCE,
    strict: Annotated[bool, Opt(help="rows without recorded inputs fail the audit too")] = False,
    as_json: Annotated[bool, Opt("--json", help="print the result as one JSON object")] = False,
    home: Annotated[
        Path | None, Opt(help="state folder holding evidence.csv" + setting("home"))
    ] = None,
) -> None:
    """Recompute every evidence row from the reading, history and factors it recorded."""
    try:
        path = load_settings(home=home, evidence_file=evidence).evidence_path
        result = audit_file(path, inputs, tolerance=tolerance)
    except ConfigError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        _print(result, tolerance)
    if not result.passed(strict=strict):
        raise typer.Exit(EXIT_OFF)


def _print(result: AuditResult, tolerance: float) -> None:
    out = stdout_console()
    out.print(
        f"{result.evidence}: {result.rows} rows, {result.reproduced} reproduce within "
        f"{tolerance:.4g} from {result.inputs.name}, {result.off_rows} off, "
        f"{len(result.without_inputs)} without inputs",
        highlight=False,
    )
    if result.torn_lines:
        lines = ", ".join(map(str, result.torn_lines))
        out.print(f"skipped as torn (wrong number of fields): lines {lines}", highlight=False)
    if result.discrepancies:
        table = Table("line", "run", "column", "cell", "recomputed", title="Off")
        for found in result.discrepancies[:LISTED]:
            table.add_row(str(found.line), found.run_id, found.column, found.cell or "empty",
                          found.expected)  # fmt: skip
        out.print(table)
        _more(out, len(result.discrepancies))
    if result.without_inputs:
        listed = ", ".join(f"{line} ({run})" for line, run in result.without_inputs[:LISTED])
        out.print(f"without inputs (not recomputed): lines {listed}", highlight=False)
        _more(out, len(result.without_inputs))


def _more(out: Console, count: int) -> None:
    if count > LISTED:
        out.print(f"... and {count - LISTED} more", highlight=False)
