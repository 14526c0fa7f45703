"""The Typer application every command module registers on."""

from __future__ import annotations

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
EXIT_TIMED_OUT = 124  # stopped at its max runtime, yet it exited 0 (as timeout(1))
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
