"""Does greenai's GPU energy agree with the raw NVML counter, and what does metering cost?

On a machine with an NVIDIA GPU (Volta or newer) and torch or cupy installed::

    python benchmarks/nvml_energy.py --seconds 60 --gpu 0 --out nvml_energy.json

1. Runs a CUDA matmul load for ``--seconds`` alone (no greenai), reading the GPU's raw
   ``nvmlDeviceGetTotalEnergyConsumption`` before and after in this process.
2. Runs the same load under ``greenai run`` (evidence written to a temporary folder, started
   at once), again bracketed by raw counter reads, and takes greenai's ``gpu_kwh`` and
   ``meter`` from the SCI CSV it wrote.
3. Reports greenai's GPU kWh against the raw counter (the raw window also holds greenai's own
   start-up and shut-down with the GPU idle, so greenai should read slightly lower), and the
   overhead of metering: the load's matmul throughput with and without greenai (the cost on
   the job's hot path) and the wall time of each whole run.

Without a GPU, NVML, torch or cupy it says what is missing and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

JOULES_PER_KWH = 3_600_000.0


def matmul_load(seconds: float) -> None:
    """The load itself (run in a child process): prints ``iterations=N elapsed=S``."""
    size = 8192
    backend = _backend()
    if backend == "torch":
        import torch

        a = torch.randn(size, size, device="cuda", dtype=torch.float16)
        b = torch.randn(size, size, device="cuda", dtype=torch.float16)
        matmul, sync = (lambda: a @ b), torch.cuda.synchronize
    else:
        import cupy

        a = cupy.random.rand(size, size, dtype=cupy.float32)
        b = cupy.random.rand(size, size, dtype=cupy.float32)
        matmul, sync = (lambda: a @ b), cupy.cuda.Device().synchronize
    iterations, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            matmul()
        sync()
        iterations += 20
    print(f"iterations={iterations} elapsed={time.perf_counter() - start:.3f}", flush=True)


def _backend() -> str | None:
    for name in ("torch", "cupy"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def _missing_requirement(gpu: int) -> str | None:
    if _backend() is None:
        return "neither torch nor cupy is installed"
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(gpu)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # any NVML failure means: nothing to benchmark here
        return f"NVML energy counter unavailable on GPU {gpu}: {exc}"
    return None


def _raw_energy_j(gpu: int) -> float:
    import pynvml

    handle = pynvml.nvmlDeviceGetHandleByIndex(gpu)
    return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)) / 1000.0


def _greenai_command() -> list[str]:
    found = shutil.which("greenai")
    if found:
        return [found]
    return [sys.executable, "-c", "from greenai.cli import main; main()"]


def _timed_run(command: list[str], env: dict[str, str], gpu: int) -> dict[str, Any]:
    before = _raw_energy_j(gpu)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    raw_kwh = (_raw_energy_j(gpu) - before) / JOULES_PER_KWH
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    stats = dict(
        part.split("=") for part in done.stdout.split() if part.startswith(("iter", "ela"))
    )
    iterations, elapsed = int(stats["iterations"]), float(stats["elapsed"])
    return {
        "wall_s": wall,
        "raw_gpu_kwh": raw_kwh,
        "iterations": iterations,
        "throughput_it_s": iterations / elapsed,
    }


def _greenai_evidence(path: Path) -> dict[str, str]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise SystemExit(f"greenai wrote no evidence row to {path}")
    return rows[-1]


def benchmark(seconds: float, gpu: int) -> dict[str, Any]:
    load = [sys.executable, os.path.abspath(__file__), "--load", "--seconds", str(seconds)]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=str(gpu))
    plain = _timed_run(load, env, gpu)
    with tempfile.TemporaryDirectory(prefix="greenai-bench-") as home:
        evidence = Path(home) / "evidence.csv"
        metered_env = dict(
            env,
            GREENAI_HOME=home,
            GREENAI_EVIDENCE_FILE=str(evidence),
            GREENAI_DEFER_SECONDS="0",  # start at once whatever the grid says
            GREENAI_THRESHOLD="0",
            GREENAI_PROVIDER="egrid:US",  # offline: the GPU machine has no network
            GREENAI_REQUEST_TIMEOUT="3",
            GREENAI_REQUEST_RETRIES="0",
        )
        metered = _timed_run([*_greenai_command(), "run", "--", *load], metered_env, gpu)
        row = _greenai_evidence(evidence)
    greenai_kwh = float(row["gpu_kwh"])
    return {
        "gpu": gpu,
        "seconds": seconds,
        "meter": row["meter"],
        "greenai_gpu_kwh": greenai_kwh,
        "raw_gpu_kwh_metered_run": metered["raw_gpu_kwh"],
        "greenai_vs_raw_pct": 100.0 * (greenai_kwh / metered["raw_gpu_kwh"] - 1.0),
        "raw_gpu_kwh_plain_run": plain["raw_gpu_kwh"],
        "throughput_plain_it_s": plain["throughput_it_s"],
        "throughput_metered_it_s": metered["throughput_it_s"],
        "hot_path_slowdown_pct": 100.0
        * (1.0 - metered["throughput_it_s"] / plain["throughput_it_s"]),
        "wall_plain_s": plain["wall_s"],
        "wall_metered_s": metered["wall_s"],
        "wall_overhead_s": metered["wall_s"] - plain["wall_s"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load")
    parser.add_argument("--gpu", type=int, default=0, help="NVML index of the GPU to load")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        matmul_load(args.seconds)
        return 0
    missing = _missing_requirement(args.gpu)
    if missing:
        print(f"nvml_energy benchmark skipped: {missing}")
        return 0
    result = benchmark(args.seconds, args.gpu)
    for key, value in result.items():
        print(f"{key:28} {value:.6g}" if isinstance(value, float) else f"{key:28} {value}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
