"""`greenai run --dry-run`, `greenai intensity` and the Python API, in-process.

HTTP to the UK API is replayed with respx from recorded shapes; no test touches the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import respx
from typer.testing import CliRunner

import greenai
from greenai.cli import app
from greenai.core.domain import Action
from tests.cli.conftest import GB_TRACE

DATA = Path(__file__).resolve().parents[1] / "data"
MOER_TRACE = Path(__file__).resolve().parents[2] / "benchmarks/data/caiso-pge-moer-2021-07.csv"
UK = "https://api.carbonintensity.org.uk"
NOW = "2023-05-04T12:40:00Z"  # inside the recorded forecast's first period


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "GREENAI_HOME": str(tmp_path / "home"),
        "GREENAI_METERS": "estimate",
        "GREENAI_REQUEST_RETRIES": "0",
    }


@pytest.fixture
def uk_api() -> Iterator[respx.MockRouter]:
    body = json.loads((DATA / "uk_national_fw48h.json").read_text(encoding="utf-8"))
    with respx.mock(base_url=UK, assert_all_called=False) as router:
        router.get(url__regex=r"/intensity/2023-05-04T12:\d\dZ/fw48h").respond(json=body)
        yield router


def invoke(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_dry_run_json_defers_with_uk_forecast(
    uk_api: respx.MockRouter, env: dict[str, str]
) -> None:
    code, out, _ = invoke(
        env, "run", "--dry-run", "--json", "--provider", "uk", "--trace-start", NOW,
        "--threshold", "10", "--defer-seconds", "86400",
    )  # fmt: skip
    assert code == 0
    decision = json.loads(out)
    assert list(decision)[:14] == [
        "at", "job_id", "policy", "action", "reason", "intensity", "threshold", "forecast_min",
        "planned_start", "deadline", "provider", "region", "signal", "fallback",
    ]  # fmt: skip
    assert decision["action"] == "defer"
    assert decision["provider"] == "uk" and decision["signal"] == "average"
    assert decision["intensity"] > 10
    assert decision["forecast_min"] <= 10
    assert "first period expected at or below" in decision["reason"]
    assert not (Path(env["GREENAI_HOME"]) / "decisions.jsonl").exists()  # a question, not a run


def test_dead_primary_falls_back_and_the_decision_says_so(env: dict[str, str]) -> None:
    with respx.mock(base_url=UK) as router:
        router.get(url__regex=r"/intensity/.*").respond(500, json={"error": {"message": "down"}})
        code, out, _ = invoke(
            env, "run", "--dry-run", "--json", "--provider", "uk,egrid:RFCE",
            "--trace-start", NOW, "--threshold", "10",
        )  # fmt: skip
    assert code == 0
    decision = json.loads(out)
    assert decision["fallback"] == "egrid:RFCE"
    assert decision["action"] == "start"
    assert "no better time to wait for" in decision["reason"]


def test_intensity_json_names_source_and_signal(env: dict[str, str]) -> None:
    code, out, _ = invoke(env, "intensity", "--provider", "egrid:CAMX", "--json", "--hours", "3")
    assert code == 0
    shown = json.loads(out)
    assert shown["source"] == "egrid:CAMX" and shown["static"] is True
    assert shown["current"] == pytest.approx(497.443 * 0.453592, rel=1e-6)
    assert len(shown["forecast"]) >= 3


def test_intensity_table_marks_the_cleanest_step(env: dict[str, str]) -> None:
    code, out, _ = invoke(
        env, "intensity", "--provider", f"trace:{GB_TRACE}", "--trace-start",
        "2023-03-15T18:00:00Z", "--hours", "6",
    )  # fmt: skip
    assert code == 0
    assert "194.19" in out and "cleanest" in out
    assert "signal average" in out


def test_output_does_not_depend_on_the_terminal_width_or_the_path_length(
    env: dict[str, str], tmp_path: Path
) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)
    deep.mkdir(parents=True)
    trace = deep / "gb-2023-hourly.csv"
    trace.write_bytes(GB_TRACE.read_bytes())
    code, out, _ = invoke(
        {**env, "COLUMNS": "40"}, "intensity", "--provider", f"trace:{trace}",
        "--trace-start", "2023-03-15T18:00:00Z", "--hours", "3",
    )  # fmt: skip
    assert code == 0
    assert f"source trace:{trace}   signal average" in out  # one unbroken line
    assert "2023-03-15T18:00:00Z" in out and "cleanest" in out


def test_trace_signal_marks_marginal_traces(env: dict[str, str], tmp_path: Path) -> None:
    unlabelled = tmp_path / "unlabelled.csv"  # header "timestamp,intensity": the file says not
    unlabelled.write_bytes(GB_TRACE.read_bytes().replace(b"average_intensity", b"intensity", 1))
    code, out, _ = invoke(
        env, "intensity", "--provider", f"trace:{unlabelled}", "--trace-signal", "marginal",
        "--trace-start", "2023-03-15T18:00:00Z", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["signal"] == "marginal"


def test_the_moer_trace_replays_as_marginal_without_a_flag(env: dict[str, str]) -> None:
    code, out, _ = invoke(
        env, "intensity", "--provider", f"trace:{MOER_TRACE}",
        "--trace-start", "2021-07-01T12:00:00Z", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["signal"] == "marginal"


def test_a_trace_signal_contradicting_the_file_is_refused(env: dict[str, str]) -> None:
    code, _, err = invoke(
        env, "intensity", "--provider", f"trace:{GB_TRACE}", "--trace-signal", "marginal",
        "--trace-start", "2023-03-15T18:00:00Z",
    )  # fmt: skip
    assert code == 2
    assert "the file says its values are average" in err


def test_all_sources_failing_is_exit_4(env: dict[str, str]) -> None:
    with respx.mock(base_url=UK) as router:
        router.get(url__regex=r".*").respond(503)
        code, _, err = invoke(env, "intensity", "--provider", "uk", "--trace-start", NOW)
    assert code == 4
    assert "no intensity signal" in err


def test_bad_setting_names_the_field(env: dict[str, str]) -> None:
    code, _, err = invoke(
        {**env, "GREENAI_CHECK_INTERVAL": "-5"}, "run", "--threshold", "1", "--", "true"
    )
    assert code == 2
    assert "check_interval" in err


def test_python_api_should_run_and_best_window(tmp_path: Path) -> None:
    env = {"GREENAI_HOME": str(tmp_path)}
    common = {"provider": f"trace:{GB_TRACE}", "trace_start": "2023-03-15T18:00:00Z"}
    decision = greenai.should_run(150, env=env, defer_seconds=6 * 3600, **common)
    assert decision.action is Action.DEFER
    assert decision.intensity == pytest.approx(194.19)
    window = greenai.best_window("1h", env=env, defer_seconds=12 * 3600, **common)
    # 2023-03-15 evening/night: the cleanest hour within the next 13 h of the trace.
    assert window.start.isoformat().startswith("2023-03-16T0")
    assert window.mean < 70


def test_public_api_is_small_and_sorted() -> None:
    assert greenai.__all__ == sorted(greenai.__all__)
    assert {"should_run", "best_window", "Forecast", "Decision"} <= set(greenai.__all__)
    for name in greenai.__all__:
        assert getattr(greenai, name) is not None
