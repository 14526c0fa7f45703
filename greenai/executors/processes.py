"""A job's command in its own process group: how it is numbered GPUs, signalled and stopped.

Shared by the daemon's per-job supervisor and `greenai run`'s child, so a limit stops a job
the same way whichever front-end ran it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

PCI_BUS_ORDER = "PCI_BUS_ID"  # the GPU numbering NVML uses


def cuda_device_order(job_env: Mapping[str, str]) -> str:
    """The ``CUDA_DEVICE_ORDER`` a job runs with: PCI bus order, as NVML numbers GPUs, unless
    the job's own env names one (else CUDA's "fastest first" order can put the job on a GPU
    other than the one it was given and the meter reads)."""
    return job_env.get("CUDA_DEVICE_ORDER", PCI_BUS_ORDER)


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        log.info("the command's process group had already ended (signal %d not sent)", signum)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(
    child: subprocess.Popen[bytes], grace_s: float, signum: int = signal.SIGTERM
) -> tuple[int, list[str]]:
    """Send ``signum`` (SIGTERM) to ``child``'s group, SIGKILL it if the child still runs
    ``grace_s`` later; what the child left in its group gets the rest of the grace, then
    SIGKILL. The child's return code, and a note when it had to be killed."""
    signal_group(child.pid, signum)
    killed_at = time.monotonic() + grace_s
    notes: list[str] = []
    try:
        returncode = child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        signal_group(child.pid, signal.SIGKILL)
        notes.append(f"killed: still running {grace_s:g}s after {signal.Signals(signum).name}")
        returncode = child.wait()
    while group_alive(child.pid) and time.monotonic() < killed_at:
        time.sleep(0.02)
    if group_alive(child.pid):
        signal_group(child.pid, signal.SIGKILL)
    return returncode, notes
