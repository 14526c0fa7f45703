"""Crash harness: SIGKILL a real `greenai serve` at random moments during a workload of short
real jobs, restart it each time, and count what went wrong.

Every job appends ``start``/``end`` lines with its id, attempt and times to a marker file, so
the harness sees what really ran, independently of the daemon's own records. It then checks:

- jobs lost: submitted (answered 201) but missing, or not ended ``succeeded``;
- runs of one job overlapping in time (a job running twice at once);
- completed jobs re-run (a second start after a first run had ended) or failed;
- evidence rows against finished runs (exactly one row per run in the runs table, none twice).

    .venv/bin/python benchmarks/crash_harness.py --jobs 200 --kills 50 [--out result.json]

Prints one JSON object. Kills land at random moments (seeded), launch windows included.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

LAUNCH = "import greenai.cli.serve; from greenai.cli.app import app; app()"
TOKEN = "crash-token"
JOB = (
    "import os, random, sys, time\n"
    "marker, job = sys.argv[1], os.environ['GREENAI_JOB_ID']\n"
    "attempt = os.environ['GREENAI_ATTEMPT']\n"
    "gpu = os.environ.get('CUDA_VISIBLE_DEVICES') or '-'\n"
    "open(marker, 'a').write(f'start {job} {attempt} {time.time()} {gpu}\\n')\n"
    "time.sleep(random.uniform(0.05, 0.6))\n"
    "open(marker, 'a').write(f'end {job} {attempt} {time.time()} {gpu}\\n')\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    """A `greenai serve` process that can be killed and started again on the same home."""

    def __init__(self, home: Path, slots: int, database_url: str | None = None) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "GREENAI_HOME": str(home),
            "GREENAI_API_PORT": str(self.port),
            "GREENAI_API_TOKEN": TOKEN,
            "GREENAI_TICK_SECONDS": "0.2",
            "GREENAI_GPU_SLOTS": str(slots),
            "GREENAI_PROVIDER": "egrid:RFCE",
            "GREENAI_METERS": "estimate",
            "GREENAI_RETRY_BUDGET": "1000",
            "GREENAI_GRACE_SECONDS": "0",
            **({"GREENAI_DATABASE_URL": database_url} if database_url else {}),
        }
        self.process: subprocess.Popen[str] | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"daemon-{self.port}.log"  # every start's stderr

    def start(self) -> None:
        with self.log.open("a") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, "serve"],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if "listening" not in line:
            tail = self.log.read_text().splitlines()[-15:]
            raise RuntimeError(f"the daemon did not start: {line!r}\n" + "\n".join(tail))

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()


def submit_all(daemon: Daemon, count: int, marker: Path) -> list[str]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    command = [sys.executable, "-c", JOB, str(marker)]
    body = {"command": command, "duration": 5, "max_delay": "1h"}
    with httpx.Client(base_url=daemon.url, headers=headers, timeout=30) as client:
        answers = [client.post("/jobs", json=body) for _ in range(count)]
    if any(a.status_code != 201 for a in answers):
        raise RuntimeError(f"submissions refused: {Counter(a.status_code for a in answers)}")
    return [a.json()["id"] for a in answers]


def run(jobs: int, kills: int, slots: int, seed: int, workdir: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    home, marker = workdir / "home", workdir / "markers.txt"
    home.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(home, slots)
    daemon.start()
    submitted = submit_all(daemon, jobs, marker)
    began = time.monotonic()
    for _ in range(kills):
        time.sleep(rng.uniform(0.05, 1.0))
        daemon.kill()
        daemon.start()
    deadline = time.monotonic() + 600
    while not all_final(home, submitted):
        if time.monotonic() > deadline:
            raise RuntimeError("jobs did not finish within 10 minutes")
        time.sleep(0.2)
    daemon.stop()
    result = check(home, marker, submitted)
    result.update(jobs=jobs, kills=kills, slots=slots, seed=seed)
    result["seconds"] = round(time.monotonic() - began, 1)
    return result


def states(home: Path) -> dict[str, str]:
    with sqlite3.connect(home / "greenai.db") as db:
        return dict(db.execute("SELECT id, state FROM jobs").fetchall())


def all_final(home: Path, submitted: list[str]) -> bool:
    known = states(home)
    final = {"succeeded", "failed", "cancelled", "expired"}
    return all(known.get(job) in final for job in submitted)


def check(home: Path, marker: Path, submitted: list[str]) -> dict[str, Any]:
    known = states(home)
    runs, by_gpu = read_markers(marker)
    overlapping = sum(_overlaps(spans) for spans in runs.values())
    rerun_after_end = sum(
        1 for spans in runs.values() if len(spans) > 1 and spans[0][1] < spans[1][0]
    )
    with sqlite3.connect(home / "greenai.db") as db:
        stored_runs = db.execute("SELECT id FROM runs").fetchall()
    with (home / "evidence.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    row_ids = Counter(row["run_id"] for row in rows)
    finished = {run_id for (run_id,) in stored_runs}
    return {
        "jobs_lost": sum(1 for job in submitted if known.get(job) != "succeeded"),
        "gpu_collisions": sum(_overlaps(spans) for gpu, spans in by_gpu.items() if gpu != "-"),
        "jobs_failed": sum(1 for job in submitted if known.get(job) == "failed"),
        "runs_overlapping": overlapping,
        "completed_jobs_rerun": rerun_after_end,
        "commands_started": sum(len(spans) for spans in runs.values()),
        "finished_runs": len(finished),
        "evidence_rows": len(rows),
        "evidence_rows_twice": sum(1 for n in row_ids.values() if n > 1),
        "runs_without_row": len(finished - set(row_ids)),
        "rows_without_run": len(set(row_ids) - finished),
    }


def read_markers(
    marker: Path,
) -> tuple[dict[str, list[list[float]]], dict[str, list[list[float]]]]:
    """Each job's runs and each GPU's occupations as ``[start, end]`` spans (end infinite
    while a run has not ended)."""
    runs: dict[str, list[list[float]]] = defaultdict(list)
    by_gpu: dict[str, list[list[float]]] = defaultdict(list)
    for line in marker.read_text().splitlines():
        kind, job, _attempt, at, gpu = line.split()
        if kind == "start":
            span = [float(at), float("inf")]
            runs[job].append(span)
            by_gpu[gpu].append(span)  # the same list: its end is filled in below
        else:  # the run that started last for this job and has not ended
            open_runs = [r for r in runs[job] if r[1] == float("inf")]
            open_runs[-1][1] = float(at)
    return runs, by_gpu


def _overlaps(spans: list[list[float]]) -> int:
    ordered = sorted(spans)
    return sum(1 for a, b in pairwise(ordered) if b[0] < a[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="greenai-crash-") as tmp:
        result = run(args.jobs, args.kills, args.slots, args.seed, Path(tmp))
    text = json.dumps(result)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
