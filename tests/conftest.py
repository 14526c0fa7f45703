"""Suite-wide: every evidence file a test leaves in its ``tmp_path`` must pass ``greenai audit``.

Issue 9 asks that the audit over all the evidence the suite produces finds no row off by more
than 0.1%. After each test that used ``tmp_path``, every SCI CSV under it is audited against
its inputs file; a row that does not reproduce fails that test's teardown, naming the cell.
Tests that write rows from hand-made records (the CSV writer's own tests, tampering) are
marked ``hand_made_evidence``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from greenai.evidence.audit import audit_file
from greenai.evidence.inputs import inputs_path

EVIDENCE_HEADER_START = "run_id,job_id,"


@pytest.fixture(autouse=True)
def _audit_evidence_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    audited = "tmp_path" in request.fixturenames
    audited = audited and not request.node.get_closest_marker("hand_made_evidence")
    tmp_path: Path | None = request.getfixturevalue("tmp_path") if audited else None
    yield
    if tmp_path is None:
        return
    problems = [
        found.describe()
        for csv_path in evidence_files(tmp_path)
        for found in audit_file(csv_path).discrepancies
    ]
    assert not problems, "evidence that does not reproduce:\n" + "\n".join(problems)


def evidence_files(root: Path) -> list[Path]:
    """SCI CSVs under ``root`` that have an inputs file beside them."""
    found = []
    for path in sorted(root.rglob("*.csv")):
        if not path.is_file() or not inputs_path(path).is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as handle:
            if handle.readline().startswith(EVIDENCE_HEADER_START):
                found.append(path)
    return found
