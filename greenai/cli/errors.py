"""Where the CLI turns a user's mistake into one line on stderr and exit 2, never a traceback:
a bad setting or file (``ConfigError``) and a path greenai cannot write (``OSError``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from greenai.cli.app import EXIT_USAGE
from greenai.core.errors import ConfigError

err = Console(stderr=True, soft_wrap=True, highlight=False)  # messages name paths: unwrapped


def say(message: str) -> None:
    """``greenai: message`` on stderr, as is (a path may hold Rich markup characters)."""
    err.print(f"greenai: {message}", markup=False)


@contextmanager
def usage_errors() -> Iterator[None]:
    """A ``ConfigError``, or an ``OSError`` about a path, is one line and exit 2."""
    try:
        yield
    except ConfigError as exc:
        say(str(exc))
        raise typer.Exit(EXIT_USAGE) from exc
    except OSError as exc:
        if exc.filename is None:
            raise
        say(f"cannot write {exc.filename}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_USAGE) from exc


def writable_file(path: Path | None, flag: str) -> None:
    """Refuse, before any work, a file that could not be written: its folder is missing or
    not writable (the work would be lost at the end)."""
    if path is None:
        return
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or path.is_dir():
        raise ConfigError(f"{flag} {path}: cannot write there")


def writable_folder(path: Path, flag: str) -> None:
    """Create ``path`` now (as later writes would) so a bad one fails before any waiting."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot create it: {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{flag} {path}: cannot write there")
