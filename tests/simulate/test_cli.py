"""``greenai simulate`` on the command line: JSON out, a PNG, and exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import greenai.cli.simulate  # noqa: F401  (registers the command)
from greenai.cli.app import app

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
WORKLOAD = (
    "id,submit,duration_min,max_delay_min,power_kw,interruptible\n"
    "a,2023-03-01T09:17:00Z,360,1440,5.6,0\n"
    "b,2023-03-02T10:00:00Z,120,600,2,1\n"
)


def test_simulate_writes_the_result_and_a_plot(tmp_path: Path) -> None:
    workload = tmp_path / "w.csv"
    workload.write_text(WORKLOAD, encoding="utf-8")
    out, png = tmp_path / "r.json", tmp_path / "p.png"
    args = ["simulate", "--trace", str(DATA / "gb-2023-hourly.csv"), "--workload", str(workload)]
    runner = CliRunner()
    options = ["--policy", "interruptible", "--forecast", "persistence", "--seed", "1"]
    outcome = runner.invoke(app, [*args, *options, "--out", str(out), "--plot", str(png)])
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(out.read_text(encoding="utf-8"))
    assert (result["policy"], result["forecast"], result["seed"]) == (
        "interruptible",
        "persistence",
        1,
    )
    assert result["jobs"] == 2 and result["savings_pct"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = runner.invoke(app, [*args, "--policy", "oracle"])
    assert printed.exit_code == 0
    assert json.loads(printed.stdout)["policy"] == "oracle"


def test_bad_input_exits_2_with_the_message_on_stderr(tmp_path: Path) -> None:
    workload = tmp_path / "w.csv"
    workload.write_text(WORKLOAD.replace("360", "-5"), encoding="utf-8")
    outcome = CliRunner().invoke(
        app, ["simulate", "--trace", str(DATA / "gb-2023-hourly.csv"), "--workload", str(workload)]
    )
    assert outcome.exit_code == 2
    assert "w.csv:2: duration_min '-5'" in outcome.stderr
