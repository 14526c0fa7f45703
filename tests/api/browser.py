"""Debian's Chromium driven by Playwright's Python client (no browser download): where it is,
and the flags that keep it off the network it has no business with."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
# Headless as root in a container, with no call home: a closed network refuses those calls.
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_executable() -> str:
    """``GREENAI_CHROMIUM``, else the first Chromium found; a failure (never a skip) naming
    how to install it when there is none."""
    given = os.environ.get("GREENAI_CHROMIUM")
    found = [given] if given else [*CANDIDATES, shutil.which("chromium") or ""]
    for path in found:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    pytest.fail(
        "no Chromium for the dashboard's browser tests: install Debian's chromium "
        "(scripts/ensure-chromium.sh, run by scripts/test.sh) or set GREENAI_CHROMIUM",
        pytrace=False,
    )
