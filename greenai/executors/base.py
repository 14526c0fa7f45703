"""What the engine needs from anything that runs commands, and GPU slot bookkeeping.

An executor is non-blocking: ``submit`` starts a command and returns a handle at once,
``poll`` says whether it has finished, ``cancel`` asks it to stop. The engine decides which
GPUs a job gets (from the store's view of what is running); the executor hands them to the
command through ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from greenai.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Launch:
    """One attempt at running a job's command."""

    job_id: str
    attempt: int
    command: tuple[str, ...]
    gpu_ids: tuple[int, ...]
    log_path: Path
    cwd: str | None = None
    env: dict[str, str] | None = None


@dataclass(slots=True)
class Handle:
    """A started command; ``process`` is the executor's own object for it."""

    job_id: str
    attempt: int
    pid: int
    gpu_ids: tuple[int, ...]
    log_path: Path
    process: Any = field(default=None, repr=False)
    cancel_sent: float | None = None  # monotonic time of the first stop request


class Executor(Protocol):
    def submit(self, launch: Launch) -> Handle:
        """Start the command now; raises ``ExecutorError`` when it cannot start."""
        ...

    def poll(self, handle: Handle) -> int | None:
        """The exit code once finished (negative: killed by that signal), else ``None``."""
        ...

    def cancel(self, handle: Handle, force: bool = False) -> None:
        """Ask the command to stop (SIGTERM), or make it stop (``force``: SIGKILL)."""
        ...

    def stop_orphan(self, job_id: str, pid: int) -> bool:
        """Kill a command a dead daemon left behind, if it is still ours; ``True`` if killed."""
        ...


def parse_gpu_slots(text: str) -> tuple[int, ...]:
    """``"4"`` -> ``(0, 1, 2, 3)``; ``"0,2,3"`` -> ``(0, 2, 3)``; ``"0"`` -> no GPUs."""
    raw = text.strip()
    try:
        if "," not in raw:
            return tuple(range(int(raw)))
        ids = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"gpu_slots: {text!r} is neither a count nor a list of indices") from exc
    if len(set(ids)) != len(ids) or any(i < 0 for i in ids):
        raise ConfigError(f"gpu_slots: {text!r} repeats an index or has a negative one")
    return ids


def pick_gpus(slots: Collection[int], busy: Collection[int], count: int) -> tuple[int, ...] | None:
    """The first ``count`` free slots in slot order, or ``None`` when too few are free."""
    free = [gpu for gpu in slots if gpu not in busy]
    return tuple(free[:count]) if len(free) >= count else None
