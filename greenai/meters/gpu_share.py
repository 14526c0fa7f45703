"""A job's share of a GPU that other processes used during its run (issue 9, attribution).

NVML's energy counter is per physical GPU: when two jobs (or a job and a notebook) run on one
GPU, each would be charged the whole GPU. The rule, in order:

1. **Per-process SM utilisation** (``nvmlDeviceGetProcessUtilization``): the job's share is
   the sum of its processes' SM utilisation samples over the run, divided by the sum of every
   process's. This is NVML's own per-process accounting of the GPU's time.
2. **Even split** where the driver keeps no utilisation samples: at each read, the processes
   on the GPU are grouped by process group, and the job is charged ``1 / groups``; the share is
   the mean over the reads.
3. **The whole GPU** when no other process was seen, and also when other processes were seen
   but none of the job's (a job in another PID namespace, such as a container, shows NVML
   host PIDs greenai cannot match): splitting then could charge the job nothing.

The tally is pure: the meter feeds it what NVML said and asks for the share at stop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

UTILISATION = "per-process SM utilisation from NVML"
EVEN_SPLIT = "an even split between the process groups on it (NVML kept no utilisation samples)"


@dataclass
class GpuShareTally:
    """What one GPU's processes did during a run: utilisation samples and process lists."""

    index: int
    own_util: float = 0.0
    all_util: float = 0.0
    reads: int = 0
    even_shares: list[float] = field(default_factory=list)
    saw_own: bool = False
    saw_others: bool = False
    seen_samples: set[tuple[int, int]] = field(default_factory=set)

    def add_utilisation(
        self, samples: Iterable[tuple[int, int, int]], owns: Callable[[int], bool]
    ) -> None:
        """``(pid, sm_percent, timestamp_us)`` samples; each sample counts once."""
        for pid, sm_percent, stamp in samples:
            if (pid, stamp) in self.seen_samples:
                continue
            self.seen_samples.add((pid, stamp))
            self.all_util += sm_percent
            if owns(pid):
                self.own_util += sm_percent

    def add_processes(self, groups: dict[int, bool]) -> None:
        """The process groups on the GPU at one read: ``{group: is the job's}``."""
        self.reads += 1
        own = any(groups.values())
        others = sum(not is_own for is_own in groups.values())
        self.saw_own |= own
        self.saw_others |= others > 0
        if own:
            self.even_shares.append(1.0 / (1 + others))

    def share(self) -> tuple[float, str] | None:
        """``(share, rule)`` when the GPU was shared and the job's part can be told; ``None``
        when the job is charged the whole GPU (alone on it, or its processes not found)."""
        if not self.saw_others or not self.saw_own:
            return None
        if self.all_util > 0:
            return self.own_util / self.all_util, UTILISATION
        if self.even_shares:
            return sum(self.even_shares) / len(self.even_shares), EVEN_SPLIT
        return None

    def note(self) -> str | None:
        """What the reading says about this GPU's sharing, if anything."""
        found = self.share()
        if found is not None:
            share, rule = found
            return (
                f"GPU {self.index} shared with other processes: this job charged {share:.0%} "
                f"of its energy, by {rule}"
            )
        if self.saw_others and not self.saw_own:
            return (
                f"GPU {self.index} ran other processes, none of them recognised as this job's "
                "(another PID namespace?): the whole GPU is charged"
            )
        return None


class JobProcesses:
    """The job's process group, known once its command has started: whoever starts the
    command (the per-job supervisor) sets ``pgid``; the meter asks ``owns`` of each PID."""

    def __init__(self) -> None:
        self.pgid: int | None = None

    def owns(self, pid: int) -> bool:
        return self.pgid is not None and process_group(pid) == self.pgid


def process_group(pid: int) -> int:
    """``pid``'s process group; the PID itself when it cannot be told (gone, or not ours to
    see), which makes it a group of its own."""
    try:
        return os.getpgid(pid)
    except OSError:
        return pid
