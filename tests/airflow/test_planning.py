"""The Airflow integration's greenai side, in the main virtualenv (no Airflow installed here):
the decision the sensor defers on, its wait on the wall, the daemon endpoint from a
connection's fields, and that nothing outside the integration imports Airflow."""

from __future__ import annotations

import ast
import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.time import format_time
from greenai.integrations.airflow.client import Endpoint, job_summary
from greenai.integrations.airflow.window import (
    as_deadline,
    as_seconds,
    find_green_start,
    greenai_time,
)
from tests.airflow.conftest import REPO, TRACE_START, write_trace


def settings(speed: float) -> dict[str, object]:
    return {"trace_start": format_time(TRACE_START), "trace_speed": speed}


def test_the_window_is_the_clean_block_and_the_wall_wait_is_trace_time_over_speed(
    tmp_path: Path,
) -> None:
    trace = write_trace(tmp_path / "t.csv", low={5, 6})
    start = find_green_start(
        duration="2h", max_delay_s=12 * 3600, provider=f"trace:{trace}", settings=settings(3600)
    )
    assert start.decision.planned_start == TRACE_START + timedelta(hours=5)
    assert start.final and start.decision.provider == "trace"
    assert start.wait_s == pytest.approx(5 * 3600, abs=60)  # the decision took < 60 trace s
    assert start.wall_wait_s == pytest.approx(5.0, abs=60 / 3600)
    xcom = start.as_xcom()
    assert xcom["decision"]["planned_start"] == "2030-01-01T05:00:00Z"
    assert xcom["decision"]["forecast_intensity"] == 50.0


def test_a_deadline_before_the_clean_block_keeps_the_task_out_of_it(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "t.csv", low={5, 6})
    start = find_green_start(
        duration="2h",
        deadline=TRACE_START + timedelta(hours=4),
        provider=f"trace:{trace}",
        settings=settings(3600),
    )
    planned = start.decision.planned_start
    assert planned is not None and planned + timedelta(hours=2) <= TRACE_START + timedelta(hours=4)


def test_a_threshold_starts_at_the_first_period_under_it(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "t.csv", low={3})
    start = find_green_start(
        duration="1h",
        policy="threshold",
        threshold=100,
        max_delay_s=12 * 3600,
        provider=f"trace:{trace}",
        settings=settings(3600),
    )
    assert start.decision.action.value == "defer"
    assert start.decision.planned_start == TRACE_START + timedelta(hours=3)


def test_greenai_time_runs_at_the_trace_speed_from_the_decision() -> None:
    xcom = {"decision": {"at": "2030-01-01T00:00:00Z"}, "speed": 3600.0}
    wall = datetime.now(UTC) - timedelta(seconds=2)
    now = greenai_time(xcom, wall)
    assert TRACE_START + timedelta(hours=2) <= now < TRACE_START + timedelta(hours=2, minutes=5)


def test_deadlines_and_delays_as_the_operators_take_them() -> None:
    assert as_deadline("2030-01-01T05:00:00Z") == TRACE_START + timedelta(hours=5)
    assert as_deadline(None) is None
    assert as_seconds("12h") == as_seconds(timedelta(hours=12)) == as_seconds(43200) == 43200


def test_the_endpoint_comes_from_the_connection_and_never_shows_its_token() -> None:
    endpoint = Endpoint.of_connection("127.0.0.1", 8787, None, "s3cret")
    assert endpoint.url == "http://127.0.0.1:8787"
    assert endpoint.headers == {"Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(endpoint)
    assert Endpoint.of_connection("https://greenai.example/", None, None, None).url == (
        "https://greenai.example"
    )
    assert Endpoint.of_connection("greenai", 443, "https", None).headers == {}


def test_a_job_summary_holds_no_argv_nor_env() -> None:
    job = {"id": "j1", "state": "failed", "exit_code": 1, "command": ["sh", "-c", "TOKEN=x"]}
    summary = job_summary({**job, "env_withheld": None, "decisions": []})
    assert summary["state"] == "failed" and summary["exit_code"] == 1
    assert "command" not in summary and "env_withheld" not in summary


def test_only_the_integration_imports_airflow_and_the_main_venv_has_none() -> None:
    assert importlib.util.find_spec("airflow") is None  # the main .venv must not get it
    importers = []
    for path in sorted((REPO / "greenai").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            if any(name.split(".")[0] == "airflow" for name in names):
                importers.append(path.relative_to(REPO).as_posix())
    assert importers and all(p.startswith("greenai/integrations/airflow/") for p in importers)
    assert not any(p.endswith(("window.py", "client.py", "__init__.py")) for p in importers)
