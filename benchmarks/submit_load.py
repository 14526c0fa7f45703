"""Submit load: concurrent clients POST /jobs to a real `greenai serve` for a while.

Starts the daemon as its own process on a fresh SQLite file (so the load generator does not
share its interpreter), drives it with keep-alive HTTP/1.1 clients on asyncio, then checks that
every accepted job is in the table. Prints one JSON line:

    .venv/bin/python benchmarks/submit_load.py --seconds 30 --clients 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCH = "import greenai.cli.serve; from greenai.cli.app import app; app()"
TOKEN = "bench-token"
BODY = json.dumps({"command": ["python", "train.py"], "duration": "1h", "max_delay": "12h"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_daemon(home: Path, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "GREENAI_HOME": str(home),
        "GREENAI_API_PORT": str(port),
        "GREENAI_API_TOKEN": TOKEN,
        "GREENAI_PROVIDER": "egrid:RFCE",
        "GREENAI_POLICY": "window",
        "GREENAI_TICK_SECONDS": "3600",
        "GREENAI_GPU_SLOTS": "1",
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


async def client(port: int, until: float, latencies: list[float], errors: list[str]) -> None:
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
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - began)
        if not head.startswith(b"HTTP/1.1 201"):
            errors.append(head.split(b"\r\n", 1)[0].decode())
    writer.close()
    await writer.wait_closed()


async def load(port: int, seconds: float, clients: int) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    until = time.perf_counter() + seconds
    await asyncio.gather(*(client(port, until, latencies, errors) for _ in range(clients)))
    return latencies, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="greenai-bench-") as tmp:
        home, port = Path(tmp), free_port()
        daemon = start_daemon(home, port)
        try:
            began = time.perf_counter()
            latencies, errors = asyncio.run(load(port, args.seconds, args.clients))
            elapsed = time.perf_counter() - began
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
        with sqlite3.connect(home / "greenai.db") as connection:
            stored = connection.execute("SELECT count(*) FROM jobs").fetchone()[0]
    accepted = len(latencies) - len(errors)
    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": round(elapsed, 1),
                "requests": len(latencies),
                "errors": len(errors),
                "throughput_per_s": round(len(latencies) / elapsed, 1),
                "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
                "accepted": accepted,
                "in_table": stored,
                "all_accepted_stored": stored == accepted,
            }
        )
    )


if __name__ == "__main__":
    main()
