"""A provider over a recorded trace (docs/formats.md §1): the honest replay of a real grid.

At ``now`` it sees only what was known then: the measured value of the step holding ``now``
and the ``fk`` forecasts issued at that step. A trace without ``fk`` columns can only give a
perfect forecast (the future actuals), and every such answer says so.

The signal (average or marginal) is the trace's own where its header says it
(``marginal_intensity``; an Electricity Maps export is an average), else the one declared
(``--trace-signal``); a declaration that contradicts the file is refused. A trace that says
nothing, with nothing declared, is taken as an average and every answer says so: a MOER trace
is never labelled ``average`` in silence.
"""

from __future__ import annotations

import csv
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path

from greenai.core.domain import Forecast, IntensityPoint, Signal
from greenai.core.errors import ConfigError, InputError, ProviderError
from greenai.core.time import format_time
from greenai.formats.traces import Trace, load_trace
from greenai.providers.base import steps_between

logger = logging.getLogger(__name__)

PERFECT_NOTE = "trace has no forecast columns: forecast is the actual future (perfect)"
UNSAID_NOTE = (
    "trace does not say whether its values are average or marginal: taken as average "
    "(declare it with --trace-signal, or name the column average_intensity or "
    "marginal_intensity)"
)

# a quoted literal as ``repr`` writes it: how the trace reader quotes the text it choked on
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_GOT = re.compile(r"\s*\(got\b.*\)\s*$")
_KNOWN_LITERALS = ("'timestamp,intensity'", "'Carbon Intensity gCO")


def _redact(problem: str) -> str:
    """A trace reader's problem with every quote of the file's own text taken out: errors
    name file, line and problem, never the line (``trace:/etc/passwd`` must not log it)."""

    def keep_or_hide(match: re.Match[str]) -> str:
        text = match.group(0)
        return text if text.startswith(_KNOWN_LITERALS) else "(text not shown)"

    return _QUOTED.sub(keep_or_hide, _GOT.sub("", problem))


def load_trace_safely(path: str) -> Trace:
    """``load_trace`` whose errors never echo the file's content: an ``InputError`` with
    file, line and a redacted problem (a file that is not CSV at all included)."""
    try:
        return load_trace(path)
    except InputError as exc:
        raise InputError(exc.path, exc.line, _redact(exc.problem)) from None
    except csv.Error:  # NUL bytes, oversized fields: not a CSV trace at all
        raise InputError(path, None, "not a CSV trace (unreadable as CSV)") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(path, None, f"not a trace ({type(exc).__name__})") from None


class TraceProvider:
    """Replays trace files; each file is loaded once (``region`` is its path)."""

    name = "trace"
    cacheable = False  # a local file cannot have an outage

    def __init__(self, path: str | Path | None = None, signal: Signal | None = None) -> None:
        self._traces: dict[str, Trace] = {}
        self.declared = signal
        # ``Provider.signal``: that of the trace given here; each region's is ``signal_of``
        self.signal = self.signal_of(str(path)) if path is not None else signal or Signal.AVERAGE

    def check_region(self, region: str) -> str:
        """A bad file, or one whose signal contradicts the declared one, is a ConfigError
        (``InputError`` is one) now, not at run time."""
        self.signal_of(region)
        return region

    def signal_of(self, region: str) -> Signal:
        """What the trace's values are: the file's word, else the declared signal, else
        average (and every answer warns, ``UNSAID_NOTE``)."""
        said = self._trace(region).signal
        if said is None:
            return self.declared or Signal.AVERAGE
        if self.declared is not None and self.declared.value != said:
            raise ConfigError(
                f"trace:{region}: the file says its values are {said}, "
                f"but trace_signal declares {self.declared.value}"
            )
        return Signal(said)

    def _unsaid(self, trace: Trace) -> tuple[str, ...]:
        return (UNSAID_NOTE,) if trace.signal is None and self.declared is None else ()

    def current(self, region: str, now: datetime) -> IntensityPoint:
        trace = self._trace(region)
        i = self._row(trace, region, now)
        return IntensityPoint(trace.timestamp(i), float(trace.actual[i]))

    def forecast(self, region: str, now: datetime, horizon: timedelta) -> Forecast:
        trace = self._trace(region)
        i = self._row(trace, region, now)
        wanted = steps_between(trace.timestamp(i), now + horizon, trace.step)
        warnings: tuple[str, ...] = ()
        if trace.forecasts is None:
            ahead = [float(v) for v in trace.actual[i + 1 : i + wanted]]
            warnings = (PERFECT_NOTE,)
        else:
            ahead = [float(v) for v in trace.forecasts[i, : wanted - 1]]
        if 1 + len(ahead) < wanted:
            reach = trace.timestamp(i + 1 + len(ahead))
            warnings = (*warnings, f"trace forecast reaches only {format_time(reach)}")
        return self._forecast(trace, region, i, (float(trace.actual[i]), *ahead), now, warnings)

    def history(self, region: str, start: datetime, end: datetime) -> Forecast:
        trace = self._trace(region)
        first = self._row(trace, region, start)
        last = min(len(trace), first + steps_between(trace.timestamp(first), end, trace.step))
        values = tuple(float(v) for v in trace.actual[first:last])
        warnings: tuple[str, ...] = ()
        if trace.end < end:
            warnings = (f"trace ends at {format_time(trace.end)}, before {format_time(end)}",)
        return self._forecast(trace, region, first, values, end, warnings)

    def _forecast(
        self,
        trace: Trace,
        region: str,
        row: int,
        values: tuple[float, ...],
        issued_at: datetime,
        warnings: tuple[str, ...],
    ) -> Forecast:
        return Forecast(
            start=trace.timestamp(row),
            step=trace.step,
            values=values,
            signal=self.signal_of(region),
            source=f"trace:{region}",
            region=region,
            issued_at=issued_at,
            warnings=(*self._unsaid(trace), *warnings),
        )

    def _trace(self, region: str) -> Trace:
        if region not in self._traces:
            self._traces[region] = load_trace_safely(region)
            logger.info("trace: loaded %s (%d steps)", region, len(self._traces[region]))
        return self._traces[region]

    @staticmethod
    def _row(trace: Trace, region: str, at: datetime) -> int:
        try:
            return trace.index_at(at)
        except ValueError as exc:
            span = f"{format_time(trace.start)}..{format_time(trace.end)}"
            raise ProviderError(
                f"trace:{region}", f"{format_time(at)} is outside the trace ({span})"
            ) from exc
