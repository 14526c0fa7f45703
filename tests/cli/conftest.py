"""Helpers for driving the real `greenai` command in a child process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
GB_TRACE = REPO / "greenai" / "data" / "gb-2023-hourly.csv"


def read_decisions(home: Path) -> list[dict[str, Any]]:
    path = home / "decisions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_evidence(home: Path) -> list[dict[str, str]]:
    path = home / "evidence.csv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def greenai_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no inherited GREENAI_* settings, estimate meter, a temp home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENAI_", "WATTTIME_"))}
    env.update({"GREENAI_HOME": str(tmp_path / "home"), "GREENAI_METERS": "estimate"})
    return env


@pytest.fixture
def greenai_cmd(greenai_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "greenai", *args],
            env=greenai_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
