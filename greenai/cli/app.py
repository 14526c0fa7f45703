"""The Typer application every command module registers on."""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

app = typer.Typer(
    name="greenai",
    help="Run jobs when the grid is cleanest, without missing deadlines, with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_USAGE = 2
EXIT_NO_SIGNAL = 3
EXIT_PROVIDERS_FAILED = 4
EXIT_CANNOT_START = 5
EXIT_DAEMON = 6  # a client of the daemon: not reachable, refused (401), no such job, conflict
EXIT_TIMED_OUT = 124  # stopped at its max runtime, yet it exited 0 (as timeout(1))
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"greenai {version('greenai')}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="print greenai's version and exit",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """Run jobs when the grid is cleanest, without missing deadlines, with evidence."""
