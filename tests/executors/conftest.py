"""Fixtures for the executor tests: local runs that are always stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.executors.helpers import LocalRuns
from tests.executors.k8s_helpers import KubeRuns, kube_runs


@pytest.fixture
def local_runs(tmp_path: Path) -> Iterator[LocalRuns]:
    runs = LocalRuns(tmp_path)
    try:
        yield runs
    finally:
        runs.cleanup()


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeRuns]:
    """Kubernetes executors against a loopback server of recorded API answers."""
    with kube_runs(tmp_path) as runs:
        yield runs
