"""A slow background sampler that turns a cumulative energy reading into a timeline.

Hardware counters are read at start, at stop and every ``record_seconds`` in between on a
daemon thread, never on the job's path. The timeline ``(clock time, cumulative kWh)`` lets the
evidence weight intensity by when the energy was really used. Cadences are wall seconds (they
exist to bound hardware-read cost and counter wrap), timestamps are the injected clock's time.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from greenai.core.time import Clock

logger = logging.getLogger(__name__)

# read(full) -> cumulative kWh since start; ``full`` asks for the slow reads (energy counters)
# too, not only the cheap ones (power), because a sample is about to be recorded.
ReadCumulative = Callable[[bool], float]
MIN_POLL_SECONDS = 0.001


class CumulativeSampler:
    """Polls ``read`` every ``poll_seconds`` and records a sample every ``record_seconds``."""

    def __init__(
        self,
        read: ReadCumulative,
        clock: Clock,
        *,
        name: str,
        poll_seconds: float,
        record_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._clock = clock
        self._name = name
        self._poll_seconds = max(poll_seconds, MIN_POLL_SECONDS)  # never a busy loop
        self._record_seconds = record_seconds
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._samples: list[tuple[datetime, float]] = []
        self._thread: threading.Thread | None = None
        self.failed_reads = 0

    @property
    def started_at(self) -> datetime:
        return self._samples[0][0]

    def start(self) -> None:
        """Record the zero point and start the background thread."""
        self._samples.append((self._clock.now(), 0.0))
        self._thread = threading.Thread(
            target=self._loop, name=f"greenai-meter-{self._name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> tuple[tuple[datetime, float], ...]:
        """Stop the thread, take the final reading and return the whole timeline."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        value = self._read_safely(full=True)
        with self._lock:
            last = self._samples[-1][1]
            self._samples.append(
                (self._clock.now(), max(last, value if value is not None else last))
            )
            return tuple(self._samples)

    def _loop(self) -> None:
        last_record = self._monotonic()
        while not self._stop.wait(self._poll_seconds):
            due = self._monotonic() - last_record >= self._record_seconds
            value = self._read_safely(full=due)
            if value is None or not due:
                continue
            last_record = self._monotonic()
            with self._lock:
                self._samples.append((self._clock.now(), max(self._samples[-1][1], value)))

    def _read_safely(self, *, full: bool) -> float | None:
        # A transient driver error must not end the measurement: count it, keep the thread.
        try:
            return self._read(full)
        except Exception as exc:
            self.failed_reads += 1
            logger.warning("%s meter: read failed (%s); keeping the last value", self._name, exc)
            return None


def cumulative_at(samples: Sequence[tuple[datetime, float]], at: datetime) -> float:
    """The cumulative energy of a timeline at ``at``, interpolated linearly between samples
    (0 before the first sample, the last value after the last one)."""
    if not samples or at < samples[0][0]:
        return 0.0
    if at >= samples[-1][0]:
        return samples[-1][1]
    i = bisect.bisect_right([t for t, _ in samples], at)
    (t0, e0), (t1, e1) = samples[i - 1], samples[i]
    span = (t1 - t0).total_seconds()
    if span <= 0:
        return e1
    return e0 + (e1 - e0) * (at - t0).total_seconds() / span
