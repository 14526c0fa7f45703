"""`greenai policies`: the registered scheduling policies, what each does and where it runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from greenai.cli.app import app
from greenai.cli.display import stdout_console
from greenai.policies.registry import all_policies


@app.command("policies")
def list_policies(
    as_json: Annotated[bool, typer.Option("--json", help="print them as JSON")] = False,
) -> None:
    """The scheduling policies every front-end reads (run, serve and simulate)."""
    policies = all_policies()
    if as_json:
        rows = [
            {
                "name": policy.name,
                "run_and_serve": policy.online,
                "needs_duration": policy.needs_duration,
                "summary": policy.summary,
            }
            for policy in policies
        ]
        typer.echo(json.dumps(rows))
        return
    table = Table("policy", "run / serve", "simulate", "summary")
    for policy in policies:
        table.add_row(policy.name, "yes" if policy.online else "-", "yes", policy.summary)
    stdout_console().print(table)
