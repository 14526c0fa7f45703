"""Appending to evidence files that several processes share.

Every append takes an exclusive ``filelock`` on ``<file>.lock`` and writes its whole line(s)
with one ``write`` call, so rows from concurrent runs (the CLI, the daemon, several hosts on
a shared filesystem that honours locks) never interleave. A file greenai creates is readable
by its owner only (0600).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from filelock import FileLock

from greenai.core.errors import InputError

logger = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 60.0
PRIVATE = 0o600  # evidence names commands, which may hold secrets: readable by its owner only


def append_locked(
    path: Path,
    text: str,
    *,
    header: str | None = None,
    older: Mapping[str, str] | None = None,
    sync: bool,
) -> str | None:
    """Append ``text`` to ``path`` under its lock; write ``header`` first when the file is new
    or empty. A torn last line (a writer killed mid-row) is closed first so the new line
    starts clean. A file that begins with an ``older`` header gets that header's text
    instead; one whose first line is neither is refused (``InputError``) rather than mixed
    with rows of another layout. ``sync`` also fsyncs, for evidence that must survive a
    power cut. Returns the header line the file has (``None`` without ``header``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S, mode=PRIVATE):
        size = path.stat().st_size if path.exists() else 0
        prefix = header if (header is not None and size == 0) else ""
        found = header.rstrip("\r\n") if header is not None else None
        if header is not None and size:
            found = first_line(path) or ""
            if older and found in older:
                text = older[found]
            elif found != header.rstrip("\r\n"):
                raise InputError(
                    str(path), 1, "header differs from the expected columns; not appending"
                )
        if size and not _ends_with_newline(path):
            logger.warning("%s: last line was torn; starting a new one", path)
            prefix = "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
        with os.fdopen(fd, "a", encoding="utf-8", newline="") as handle:
            handle.write(prefix + text)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
    return found


def first_line(path: Path) -> str | None:
    """The file's first line without its newline, ``None`` when missing or empty."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.readline().rstrip("\r\n")


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
