"""``--plot``: the intensity over a span with each job's segments laid over it, and savings by
policy next to the oracle. Matplotlib with the Agg backend: no display needed."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): the backend must be chosen first

from greenai.core.time import parse_time
from greenai.formats.traces import Trace

MAX_LANES = 40  # job rows drawn under the intensity; more would be unreadable


def plot_result(
    trace: Trace,
    result: dict[str, Any],
    savings: dict[str, float],
    out: str | Path,
    span: tuple[datetime, datetime] | None = None,
) -> None:
    """Write a PNG: intensity with job segments (top), savings by policy (bottom).

    ``span`` defaults to the first week holding a job; ``savings`` maps policy -> percent and
    should include ``oracle`` so every bar can be read against the optimum.
    """
    start, end = span or _default_span(trace, result)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 8), height_ratios=(3, 1.4))
    first, last = trace.index_at(start), min(trace.index_at(end - trace.step) + 1, len(trace))
    times = [trace.timestamp(i) for i in range(first, last + 1)]
    values = [*trace.actual[first:last], trace.actual[last - 1]]
    top.step(times, values, where="post", color="tab:gray", label="actual intensity")
    top.set_ylabel("intensity (gCO2/kWh)")
    top.set_xlim(start, end)
    lanes = top.twinx()
    _draw_segments(lanes, result, start, end)
    top.set_title(f"{result['policy']} on {result['trace']} (forecast {result['forecast']})")
    top.legend(loc="upper left")
    _draw_savings(bottom, savings)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def _default_span(trace: Trace, result: dict[str, Any]) -> tuple[datetime, datetime]:
    starts = [parse_time(d["segments"][0][0]) for d in result["jobs_detail"] if d["segments"]]
    begin = max(trace.start, min(starts)) if starts else trace.start
    begin = trace.timestamp(trace.index_at(begin))
    return begin, min(trace.end, begin + timedelta(days=7))


def _draw_segments(axis: Any, result: dict[str, Any], start: datetime, end: datetime) -> None:
    lane = 0
    for detail in result["jobs_detail"]:
        pieces = [(parse_time(a), parse_time(b)) for a, b in detail["segments"]]
        visible = [(a, b) for a, b in pieces if b > start and a < end]
        if not visible or lane >= MAX_LANES:
            continue
        color = "tab:red" if detail["late"] else "tab:green"
        axis.broken_barh([(a, b - a) for a, b in visible], (lane + 0.2, 0.6), color=color)
        lane += 1
    axis.set_ylim(0, max(lane, 1) * 3)  # jobs in the lower third, under the curve's labels
    axis.set_yticks([])
    total = len(result["jobs_detail"])
    shown = f"all {total}" if lane == total else f"{lane} of {total}, those in this span"
    axis.set_ylabel(f"jobs, one per row: {shown} (red: late)")


def _draw_savings(axis: Any, savings: dict[str, float]) -> None:
    names = list(savings)
    colors = ["tab:blue" if n != "oracle" else "black" for n in names]
    bars = axis.bar(names, [savings[n] for n in names], color=colors)
    axis.bar_label(bars, fmt="%.1f%%")
    axis.margins(y=0.25)
    axis.set_ylabel("savings vs run-at-submit (%)")
    axis.set_title("savings by policy (black: offline optimum)")
