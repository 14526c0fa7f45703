"""The Typer application every command module registers on."""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

from greenai.core.settings import Settings

app = typer.Typer(
    name="greenai",
    help="Run jobs when the grid is cleanest, without missing deadlines, with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def setting(name: str) -> str:
    """`` (default: GREENAI_TICK_SECONDS, else 60)``: a flag's fallback as the settings have
    it, so the help never drifts from them."""
    value = Settings.model_fields[name].default
    if isinstance(value, bool):
        shown = "yes" if value else "no"
    elif isinstance(value, float):
        shown = f"{value:g}"
    else:
        shown = "none" if value is None else str(value)
    return f" (default: GREENAI_{name.upper()}, else {shown})"


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
