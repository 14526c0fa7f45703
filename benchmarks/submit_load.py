"""Submit load: concurrent clients POST /jobs to a real `greenai serve` for a while.

Starts the daemon as its own process on a fresh SQLite file, drives it with keep-alive
HTTP/1.1 connections, then checks that every accepted job id is in the table. Prints one JSON
line:

    .venv/bin/python benchmarks/submit_load.py --seconds 30 --clients 16

``--queued N --tick 10 --gpu-slots 4`` first fills the queue with N waiting jobs (and a trace
around now, so they are really planned) and makes the daemon re-plan every 10 s while jobs
run: submissions measured against a busy loop. ``peak_rss_mb`` is the API process's
``VmHWM``, ``loop_peak_rss_mb`` its re-planning loop process's (``greenai/daemon/loop.py``),
``tracker_peak_rss_mb`` multiprocessing's resource tracker's (the daemon's third process).
Sampled every 0.2 s: ``peak_rss_both_mb``, the most the API and loop processes held at once
(``VmRSS``; pages of shared libraries counted in each), and ``peak_pss_both_mb``, the same with
each shared page split between the processes mapping it (``Pss``: what the machine lost).

The load generator shares the machine with the daemon, so it must be lean or it measures
itself: ``wrk`` (C, one thread, a Lua script collecting the ids; Debian package ``wrk``) when
it is installed, else an asyncio client over raw sockets. ``--client`` picks one;
``--install-wrk`` installs it with apt-get first (root only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

LAUNCH = "import greenai.cli.serve; from greenai.cli.app import app; app()"
TOKEN = "bench-token"
BODY = json.dumps({"command": ["python", "train.py"], "duration": "1h", "max_delay": "12h"})
ID_MARK = b'"id":"'

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ids = {}; accepted = 0; failed = {} end
function response(status, headers, body)
  if status == 201 then
    accepted = accepted + 1
    ids[accepted] = string.match(body, '"id":"([^"]+)"')
  else
    failed[#failed + 1] = tostring(status)
  end
end
function done(summary, latency, requests)
  local out = io.open("%(ids_path)s", "w")
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  for _, thread in ipairs(threads) do
    for _, id in ipairs(thread:get("ids")) do out:write(id, "\\n") end
    errors = errors + #thread:get("failed")
  end
  out:close()
  local stats = io.open("%(stats_path)s", "w")
  stats:write(string.format('{"requests": %%d, "errors": %%d, "duration_us": %%d, '
    .. '"p50_us": %%d, "p99_us": %%d}', summary.requests, errors, summary.duration,
    latency:percentile(50), latency:percentile(99)))
  stats:close()
end
"""


@dataclass
class Outcome:
    """What a load generator saw: request count, errors, latencies, accepted ids."""

    requests: int
    errors: list[str]
    seconds: float
    p50_ms: float
    p99_ms: float
    ids: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_daemon(
    home: Path, port: int, tick: float = 3600, slots: int = 1, provider: str = "egrid:RFCE"
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "GREENAI_HOME": str(home),
        "GREENAI_API_PORT": str(port),
        "GREENAI_API_TOKEN": TOKEN,
        "GREENAI_PROVIDER": provider,
        "GREENAI_POLICY": "window",
        "GREENAI_TICK_SECONDS": str(tick),
        "GREENAI_GPU_SLOTS": str(slots),
        "GREENAI_METERS": "estimate",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if "listening" not in line:
        raise SystemExit(f"daemon did not start: {line!r}")
    return process


# -- wrk -------------------------------------------------------------------------------------


def loop_pid(pid: int) -> int | None:
    """The daemon's loop process: its child running ``spawn_main`` (the other child is
    multiprocessing's resource tracker)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            return int(child)
    return None


def peak_rss_kb(pid: int) -> int:
    """The daemon's peak resident memory (``VmHWM``), in KiB; 0 where /proc cannot say."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1])


def tracker_pid(pid: int, loop: int | None) -> int | None:
    """The daemon's other child: multiprocessing's resource tracker."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return next((int(child) for child in children if int(child) != loop), None)


def status_kb(pid: int, field: str, name: str = "status") -> int:
    """One ``field`` of ``/proc/PID/status`` (or ``smaps_rollup``), in KiB; 0 if unreadable."""
    try:
        text = Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return 0
    line = next((x for x in text.splitlines() if x.startswith(field + ":")), f"{field}: 0 kB")
    return int(line.split()[1])


class MemorySampler(threading.Thread):
    """The most the API and loop processes held at once, ``VmRSS`` and ``Pss`` summed, in KiB;
    read every ``period_s`` until ``stop``."""

    def __init__(self, pid: int, period_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.period_s = pid, period_s
        self.rss_kb = self.pss_kb = 0
        self._done = threading.Event()

    def run(self) -> None:
        loop = None
        while not self._done.wait(self.period_s):
            loop = loop or loop_pid(self.pid)
            pids = [self.pid] + ([loop] if loop else [])
            rss = sum(status_kb(pid, "VmRSS") for pid in pids)
            pss = sum(status_kb(pid, "Pss", "smaps_rollup") for pid in pids)
            self.rss_kb, self.pss_kb = max(self.rss_kb, rss), max(self.pss_kb, pss)

    def stop(self) -> None:
        self._done.set()
        self.join()


def find_wrk(install: bool) -> str | None:
    found = shutil.which("wrk")
    if found is None and install and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
    return found


def run_wrk(wrk: str, port: int, seconds: float, clients: int, tmp: Path) -> Outcome:
    ids_path, stats_path, script = tmp / "ids.txt", tmp / "stats.json", tmp / "submit.lua"
    script.write_text(
        WRK_SCRIPT % {"body": BODY, "token": TOKEN, "ids_path": ids_path, "stats_path": stats_path}
    )
    argv = [wrk, "-t1", f"-c{clients}", f"-d{seconds:g}s", "-s", str(script)]
    subprocess.run([*argv, f"http://127.0.0.1:{port}/jobs"], check=True, capture_output=True)
    stats = json.loads(stats_path.read_text())
    return Outcome(
        requests=stats["requests"],
        errors=["error"] * stats["errors"],
        seconds=stats["duration_us"] / 1e6,
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        ids=ids_path.read_text().split(),
    )


# -- the asyncio fallback --------------------------------------------------------------------


async def client(port: int, until: float, latencies: list[float], outcome: Outcome) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = BODY.encode()
    request = (
        f"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    while time.perf_counter() < until:
        began = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        answer = await reader.readexactly(length)
        latencies.append(time.perf_counter() - began)
        if head.startswith(b"HTTP/1.1 201"):
            start = answer.index(ID_MARK) + len(ID_MARK)
            outcome.ids.append(answer[start : answer.index(b'"', start)].decode())
        else:
            outcome.errors.append(head.split(b"\r\n", 1)[0].decode())
    writer.close()
    await writer.wait_closed()


async def run_python(port: int, seconds: float, clients: int) -> Outcome:
    latencies: list[float] = []
    outcome = Outcome(0, [], 0.0, 0.0, 0.0)
    began = time.perf_counter()
    until = began + seconds
    await asyncio.gather(*(client(port, until, latencies, outcome) for _ in range(clients)))
    outcome.seconds = time.perf_counter() - began
    outcome.requests = len(latencies)
    outcome.p50_ms = percentile(latencies, 0.50) * 1000
    outcome.p99_ms = percentile(latencies, 0.99) * 1000
    return outcome


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- main ------------------------------------------------------------------------------------


def stored_ids(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM jobs")}


def fill_queue(home: Path, count: int) -> str:
    """``count`` waiting jobs in the database before the daemon starts, and a trace around now
    (half-hourly, a daily cycle) so the loop really plans them: returns its provider spec."""
    import math
    import random
    from datetime import UTC, datetime, timedelta

    from greenai.core.domain import Job
    from greenai.storage.database import make_engine, upgrade
    from greenai.storage.records import Submission
    from greenai.storage.store import Store

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    trace = home / "trace.csv"
    rows = ["timestamp,intensity"]
    for step in range(-48, 200):
        at = now + timedelta(minutes=30 * step)
        value = 200 + 120 * math.sin(2 * math.pi * step / 48)
        rows.append(f"{at.strftime('%Y-%m-%dT%H:%M:%SZ')},{value:.1f}")
    trace.write_text("\n".join(rows) + "\n")
    store = Store(make_engine(f"sqlite:///{home / 'greenai.db'}"))
    upgrade(store.engine)
    rng = random.Random(4)
    batch = []
    for k in range(count):
        duration = timedelta(minutes=rng.choice([15, 30, 60, 90, 120, 240]))
        deadline = now + duration + timedelta(hours=rng.uniform(1, 46))
        job = Job(f"q-{k}", now, duration, deadline, name="queued", command=("true",))
        batch.append((Submission(job), now))
    for first in range(0, len(batch), 5000):
        store.submit_many(batch[first : first + 5000])
    store.engine.dispose()
    return f"trace:{trace}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--install-wrk", action="store_true", help="apt-get install wrk")
    parser.add_argument("--queued", type=int, default=0, help="waiting jobs before the load")
    parser.add_argument("--tick", type=float, default=3600.0, help="the daemon's re-plan period")
    parser.add_argument("--gpu-slots", type=int, default=1, help="slots queued jobs run on")
    args = parser.parse_args()
    wrk = find_wrk(args.install_wrk) if args.client != "python" else None
    if args.client == "wrk" and wrk is None:
        raise SystemExit("wrk not found: apt-get install wrk, or --client python")
    if args.client == "auto" and wrk is None:
        print("wrk not found; using the asyncio client (apt-get install wrk)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="greenai-bench-") as tmp:
        home, port = Path(tmp), free_port()
        provider = fill_queue(home, args.queued) if args.queued else "egrid:RFCE"
        daemon = start_daemon(home, port, args.tick, args.gpu_slots, provider)
        sampler = MemorySampler(daemon.pid)
        sampler.start()
        try:
            if wrk is not None:
                outcome = run_wrk(wrk, port, args.seconds, args.clients, home)
            else:
                outcome = asyncio.run(run_python(port, args.seconds, args.clients))
        finally:
            sampler.stop()
            rss_kb = peak_rss_kb(daemon.pid)
            loop = loop_pid(daemon.pid)
            loop_rss_kb = peak_rss_kb(loop) if loop is not None else 0
            tracker = tracker_pid(daemon.pid, loop)
            tracker_rss_kb = peak_rss_kb(tracker) if tracker is not None else 0
            daemon.terminate()
            daemon.wait(timeout=60)
        stored = stored_ids(home / "greenai.db")
    missing = set(outcome.ids) - stored
    print(
        json.dumps(
            {
                "client": "wrk" if wrk is not None else "python-asyncio",
                "queued_before": args.queued,
                "tick_s": args.tick,
                "peak_rss_mb": round(rss_kb / 1024, 1),
                "loop_peak_rss_mb": round(loop_rss_kb / 1024, 1),
                "tracker_peak_rss_mb": round(tracker_rss_kb / 1024, 1),
                "peak_rss_both_mb": round(sampler.rss_kb / 1024, 1),
                "peak_pss_both_mb": round(sampler.pss_kb / 1024, 1),
                "clients": args.clients,
                "seconds": round(outcome.seconds, 1),
                "requests": outcome.requests,
                "errors": len(outcome.errors),
                "throughput_per_s": round(outcome.requests / outcome.seconds, 1),
                "p50_ms": round(outcome.p50_ms, 2),
                "p99_ms": round(outcome.p99_ms, 2),
                "accepted": len(outcome.ids),
                "in_table": len(stored),
                "accepted_missing_from_table": len(missing),
                "all_accepted_stored": not missing and len(set(outcome.ids)) == len(outcome.ids),
            }
        )
    )


if __name__ == "__main__":
    main()
