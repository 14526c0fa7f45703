"""What a person watching `greenai run` sees while a job waits for a cleaner grid.

On a terminal: one Rich live line, rewritten in place. Anywhere else (a pod's log, CI): one
plain line per check, so logs stay greppable.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from greenai.core.domain import Decision
from greenai.core.time import format_time

UNWRAPPED_WIDTH = 1000  # wider than any line or table greenai prints


def stdout_console() -> Console:
    """Where commands print for people: on a terminal, at its width; anywhere else (a pipe, a
    log, a test) nothing is wrapped, whatever ``COLUMNS`` says, so the output does not depend
    on the width of a terminal that is not there (or on the length of a path in it)."""
    console = Console(soft_wrap=True)
    return console if console.is_terminal else Console(soft_wrap=True, width=UNWRAPPED_WIDTH)


def _short(delta: timedelta) -> str:
    seconds = max(0, round(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def status_line(decision: Decision, time_left: timedelta, now: datetime) -> str:
    """``deferring: 212 g/kWh > 150 | best 13:00Z (forecast min 98) | 54m left | uk:13``."""
    parts = [f"deferring: {decision.intensity:g} g/kWh" if decision.intensity is not None else ""]
    if decision.threshold is not None:
        parts[0] += f" > {decision.threshold:g}"
    if decision.planned_start is not None and decision.planned_start > now:
        best = format_time(decision.planned_start)
        parts.append(f"best {best}")
    if decision.forecast_min is not None:
        parts.append(f"forecast min {decision.forecast_min:g}")
    parts.append(f"{_short(time_left)} left")
    if decision.provider:
        source = f"{decision.provider}:{decision.region}" if decision.region else decision.provider
        if decision.fallback:
            source += f" (fallback {decision.fallback})"
        parts.append(source)
    return " | ".join(p for p in parts if p)


class DeferralDisplay:
    """Shows each deferral; a context manager so the live line is always cleaned up."""

    def __init__(self, console: Console, live: bool | None = None) -> None:
        self._console = console
        self._live_enabled = console.is_terminal if live is None else live
        self._live: Live | None = None

    def __enter__(self) -> DeferralDisplay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def show(self, decision: Decision, time_left: timedelta, now: datetime) -> None:
        line = status_line(decision, time_left, now)
        if not self._live_enabled:
            self._console.print(
                f"{format_time(now)} greenai {line}", highlight=False, soft_wrap=True
            )
            return
        text = Text(line, style="yellow")
        if self._live is None:
            self._live = Live(text, console=self._console, refresh_per_second=4, transient=True)
            self._live.start()
        else:
            self._live.update(text)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
