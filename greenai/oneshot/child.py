"""Run the user's command as a child and stay out of its way.

The child inherits stdout/stderr (output streams as it is written) and the environment. It gets
its own process group, and greenai forwards SIGINT, SIGTERM and SIGHUP to that group: a pod
shutdown or a Ctrl-C reaches the job exactly once, and greenai stays alive to write the evidence
for whatever ran before it exits with the child's status.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from greenai.core.errors import ExecutorError

log = logging.getLogger(__name__)

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True, slots=True)
class Finished:
    """How the child ended: ``exit_code`` as a shell reports it (128 + N when killed by N)."""

    exit_code: int
    signalled: int | None = None


def describe_command(argv: Sequence[str], shell: bool) -> str:
    """The command as one line, for evidence and logs."""
    if shell:
        return argv[0] if len(argv) == 1 else " ".join(argv)
    return subprocess.list2cmdline(list(argv))


def start_child(
    argv: Sequence[str], *, shell: bool = False, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (or, with ``shell``, one shell string) in its own process group."""
    if not argv:
        raise ExecutorError("no command given: put it after --, e.g. greenai run -- python x.py")
    args: str | list[str] = describe_command(argv, True) if shell else list(argv)
    try:
        return subprocess.Popen(
            args,
            shell=shell,
            env=dict(env) if env is not None else None,
            process_group=0,
        )
    except FileNotFoundError as exc:
        raise ExecutorError(f"command not found: {argv[0]}") from exc
    except PermissionError as exc:
        raise ExecutorError(f"command not executable: {argv[0]}") from exc


def wait_forwarding_signals(child: subprocess.Popen[bytes]) -> Finished:
    """Wait for ``child``, passing SIGINT/SIGTERM/SIGHUP on to its process group meanwhile.

    Must be called from the main thread (Python delivers signals there).
    """

    def forward(signum: int, _frame: object) -> None:
        log.info("forwarding signal %s to the job (pid %d)", signal.Signals(signum).name, child.pid)
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            log.debug("job already gone when signal %d arrived", signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        returncode = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if returncode < 0:
        return Finished(exit_code=128 - returncode, signalled=-returncode)
    return Finished(exit_code=returncode)
