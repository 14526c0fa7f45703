"""Run the user's command as a child and stay out of its way.

The child inherits stdout/stderr (output streams as it is written) and the environment. It gets
its own process group, and greenai forwards SIGINT, SIGTERM and SIGHUP to that group: a pod
shutdown or a Ctrl-C reaches the job exactly once, and greenai stays alive to write the evidence
for whatever ran before it exits with the child's status. With a max runtime, a child still
running that long (wall time) after it started gets SIGTERM, and SIGKILL ``grace_s`` later, as
the daemon's supervisor does.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from greenai.core.errors import ExecutorError
from greenai.executors.processes import cuda_device_order, signal_group, stop_group

log = logging.getLogger(__name__)

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True, slots=True)
class Finished:
    """How the child ended: ``exit_code`` as a shell reports it (128 + N when killed by N)."""

    exit_code: int
    signalled: int | None = None
    limit: str | None = None  # the limit that stopped it ("stopped after its max runtime ...")
    notes: tuple[str, ...] = ()  # the limit's note, and whether it had to be killed


def describe_command(argv: Sequence[str], shell: bool) -> str:
    """The command as one line, for evidence and logs."""
    if shell:
        return argv[0] if len(argv) == 1 else " ".join(argv)
    return subprocess.list2cmdline(list(argv))


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with CUDA numbering GPUs by PCI bus, as NVML does (``CUDA_DEVICE_ORDER=
    PCI_BUS_ID``), unless it already names an order: else ``--gpus 0`` could run on one GPU
    while the meter reads another."""
    return {**env, "CUDA_DEVICE_ORDER": cuda_device_order(env)}


def start_child(
    argv: Sequence[str], *, shell: bool = False, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (or, with ``shell``, one shell string) in its own process group, with
    ``env`` (default: greenai's own) as ``child_env`` completes it."""
    if not argv:
        raise ExecutorError("no command given: put it after --, e.g. greenai run -- python x.py")
    args: str | list[str] = describe_command(argv, True) if shell else list(argv)
    try:
        return subprocess.Popen(
            args,
            shell=shell,
            env=child_env(os.environ if env is None else env),
            process_group=0,
        )
    except FileNotFoundError as exc:
        raise ExecutorError(f"command not found: {argv[0]}") from exc
    except PermissionError as exc:
        raise ExecutorError(f"command not executable: {argv[0]}") from exc


def wait_forwarding_signals(
    child: subprocess.Popen[bytes], max_runtime: timedelta | None = None, grace_s: float = 30.0
) -> Finished:
    """Wait for ``child``, passing SIGINT/SIGTERM/SIGHUP on to its process group meanwhile,
    and stop it once it has run ``max_runtime`` (measured from this call, made as it starts).

    Must be called from the main thread (Python delivers signals there).
    """

    def forward(signum: int, _frame: object) -> None:
        log.info("forwarding signal %s to the job (pid %d)", signal.Signals(signum).name, child.pid)
        signal_group(child.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        returncode, notes = _wait_within(child, max_runtime, grace_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    limit = notes[0] if notes else None
    if returncode < 0:
        return Finished(128 - returncode, -returncode, limit, notes)
    return Finished(returncode, None, limit, notes)


def _wait_within(
    child: subprocess.Popen[bytes], max_runtime: timedelta | None, grace_s: float
) -> tuple[int, tuple[str, ...]]:
    """The child's return code; past ``max_runtime``, SIGTERM to its group, then SIGKILL to
    whatever of the group is left ``grace_s`` later. The notes say what was done."""
    if max_runtime is None:
        return child.wait(), ()
    try:
        return child.wait(timeout=max_runtime.total_seconds()), ()
    except subprocess.TimeoutExpired:
        note = f"stopped after its max runtime {max_runtime}"
    log.warning("job (pid %d) %s: SIGTERM, SIGKILL after %gs", child.pid, note, grace_s)
    returncode, killed = stop_group(child, grace_s)
    return returncode, (note, *killed)
