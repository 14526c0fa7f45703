"""`./run.sh demo`: `greenai run` on a real GB evening in 2023, replayed at 30 min per second.

At 18:00 on 2023-03-15 the GB grid was at 194 gCO2/kWh; it fell below 150 at 21:00. With
``--threshold 150`` greenai defers, re-checks every 30 (trace) minutes, starts the job when the
trace reaches the threshold, and writes one SCI evidence row and the decision log. Nothing here
touches the network: the trace ships inside the package.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

TRACE_START = "2023-03-15T18:00:00Z"
SHOWN_COLUMNS = (
    "job_name",
    "submitted_at",
    "started_at",
    "finished_at",
    "delay_s",
    "provider",
    "signal",
    "forecast_intensity",
    "actual_intensity",
    "energy_kwh",
    "meter",
    "operational_g",
    "embodied_g",
    "counterfactual_intensity",
    "counterfactual_g",
    "saved_g",
)


def demo_command(home: Path) -> list[str]:
    trace = resources.files("greenai") / "data" / "gb-2023-hourly.csv"
    return [
        sys.executable,
        "-m",
        "greenai",
        "run",
        "--provider",
        f"trace:{trace}",
        "--trace-start",
        TRACE_START,
        "--trace-speed",
        "1800",
        "--threshold",
        "150",
        "--defer-seconds",
        "21600",
        "--check-interval",
        "1800",
        "--power-watts",
        "300",
        "--job-name",
        "demo-train",
        "--home",
        str(home),
        "--",
        sys.executable,
        "-c",
        "import time; print('training...', flush=True); time.sleep(2); print('done')",
    ]


def main() -> int:
    console = Console()
    home = Path(os.environ.get("GREENAI_HOME", "artifacts")) / "demo"
    home.mkdir(parents=True, exist_ok=True)
    for name in ("evidence.csv", "decisions.jsonl"):
        (home / name).unlink(missing_ok=True)
    command = demo_command(home)
    console.rule("greenai run on the real GB grid, 2023-03-15 18:00 UTC, 30 min per second")
    console.print(" ".join(command[3:]), highlight=False, soft_wrap=True)
    env = {**os.environ, "GREENAI_METERS": "estimate"}
    code = subprocess.call(command, env=env)
    console.rule("decision log")
    for line in (home / "decisions.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        console.print(
            f"{entry['at']}  {entry['action']:<6} {entry['reason']}",
            highlight=False,
            soft_wrap=True,
        )
    console.rule("SCI evidence row")
    with (home / "evidence.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    table = Table("column", "value")
    for column in SHOWN_COLUMNS:
        table.add_row(column, rows[-1][column])
    console.print(table)
    console.print(f"files: {home / 'evidence.csv'}, {home / 'decisions.jsonl'}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
