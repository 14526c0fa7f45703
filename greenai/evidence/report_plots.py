"""The PNGs of ``greenai report``, drawn from evidence rows alone. Matplotlib with the Agg
backend (no display), as ``greenai.simulate.plot``; imported only when a report is made."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): the backend must be chosen first
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

from greenai.evidence.report import SIGNALS, EvidenceRow

MAX_BARS = 60  # runs drawn per-job; more would be unreadable
COLORS = {"average": "tab:green", "marginal": "tab:purple"}
DPI = 110


def plot_energy_and_co2(rows: Sequence[EvidenceRow], out: Path) -> None:
    """Per run: energy (top), operational against counterfactual grams (bottom)."""
    shown = sorted(rows, key=lambda r: r.finished_at)[-MAX_BARS:]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    positions = range(len(shown))
    top.bar(positions, [r.energy_kwh for r in shown], color="tab:blue")
    top.set_ylabel("energy (kWh)")
    more = f", the last {len(shown)} of {len(rows)}" if len(shown) < len(rows) else ""
    top.set_title(f"energy per run{more} (the counterfactual uses the same energy)")
    width = 0.4
    operational = [r.operational_g if r.operational_g is not None else 0.0 for r in shown]
    counterfactual = [r.counterfactual_g if r.counterfactual_g is not None else 0.0 for r in shown]
    bottom.bar(
        [p - width / 2 for p in positions],
        operational,
        width,
        label="operational (as run)",
        color="tab:green",
    )
    bottom.bar(
        [p + width / 2 for p in positions],
        counterfactual,
        width,
        color="tab:gray",
        label="counterfactual (started at submit)",
    )
    bottom.set_ylabel("operational emissions (gCO2e)")
    bottom.set_title("CO2 per run against its counterfactual (unknown values drawn as 0)")
    bottom.legend(loc="upper left")
    bottom.set_xticks(list(positions))
    bottom.set_xticklabels([_label(r) for r in shown], rotation=70, ha="right", fontsize=7)
    _save(figure, out)


def plot_intensity_runs(rows: Sequence[EvidenceRow], out: Path) -> None:
    """Each run as a bar at its energy-weighted intensity over its real span, its
    counterfactual (same duration from submit) as a grey bar with an arrow to where it ran,
    the forecast as a dot; one panel per signal, since they are never mixed."""
    figure, panels = _panels(rows)
    for signal, axis in panels:
        _draw_runs(axis, [r for r in rows if r.signal == signal], COLORS[signal])
        axis.set_ylabel("intensity (gCO2e/kWh)")
        axis.set_title(f"energy-weighted grid intensity of each run ({signal} signal)")
        axis.set_ylim(bottom=0)
        axis.margins(y=0.15)
        axis.legend(loc="upper left", fontsize=8)
    _time_axis(panels[-1][1], "time (UTC)")
    _save(figure, out)


def _draw_runs(axis: Any, rows: Sequence[EvidenceRow], color: str) -> None:
    seen: set[str] = set()
    for row in sorted(rows, key=lambda r: r.started_at):
        span = row.finished_at - row.started_at
        cf, actual = row.counterfactual_intensity, row.actual_intensity
        if cf is not None:
            _hline(
                axis,
                row.submitted_at,
                row.submitted_at + span,
                cf,
                "tab:gray",
                2,
                "counterfactual: same run started at submit",
                seen,
            )
        if actual is not None:
            _hline(axis, row.started_at, row.finished_at, actual, color, 4, "run as started", seen)
        if cf is not None and actual is not None and row.started_at > row.submitted_at:
            axis.annotate(
                "",
                xy=(row.started_at, actual),
                xytext=(row.submitted_at, cf),
                arrowprops={"arrowstyle": "->", "color": "tab:gray", "alpha": 0.5},
            )
        if row.forecast_intensity is not None:
            label = None if "forecast" in seen else "forecast at decision"
            seen.add("forecast")
            axis.plot([row.started_at], [row.forecast_intensity], "k.", label=label)


def plot_cumulative_savings(rows: Sequence[EvidenceRow], out: Path) -> None:
    """Per signal, cumulative operational and counterfactual grams over the runs' finish times
    (rows with both known), the area between them the savings."""
    figure, panels = _panels(rows)
    first, last = min(r.started_at for r in rows), max(r.finished_at for r in rows)
    end = last + max((last - first) * 0.03, timedelta(minutes=10))
    for signal, axis in panels:
        known = sorted(
            (
                r
                for r in rows
                if r.signal == signal
                and r.operational_g is not None
                and r.counterfactual_g is not None
            ),
            key=lambda r: r.finished_at,
        )
        axis.set_ylabel("cumulative gCO2e")
        if not known:
            axis.set_title(f"{signal} signal: no run has both figures known")
            continue
        # from 0 at the first start to the last total, held to the end of the panel
        times = [known[0].started_at, *(r.finished_at for r in known), end]
        actual = [0.0, *accumulate(r.operational_g or 0.0 for r in known)]
        baseline = [0.0, *accumulate(r.counterfactual_g or 0.0 for r in known)]
        actual.append(actual[-1])
        baseline.append(baseline[-1])
        color = COLORS[signal]
        axis.step(
            times,
            baseline,
            where="post",
            color="tab:gray",
            linestyle="--",
            label="counterfactual: every run started at submit",
        )
        axis.step(times, actual, where="post", color=color, label="as run")
        axis.fill_between(
            times, actual, baseline, step="post", color=color, alpha=0.15, label="saved"
        )
        saved = baseline[-1] - actual[-1]
        axis.set_title(
            f"cumulative operational emissions, {signal} signal: {_runs(len(known))}, "
            f"saved {saved:.1f} g of {baseline[-1]:.1f} g"
        )
        axis.legend(loc="upper left", fontsize=8)
    _time_axis(panels[-1][1], "run finish time (UTC)")
    _save(figure, out)


def _panels(rows: Sequence[EvidenceRow]) -> tuple[Any, list[tuple[str, Any]]]:
    """A figure with one panel per signal present (average first), sharing the time axis."""
    signals = [s for s in SIGNALS if any(r.signal == s for r in rows)]
    figure, axes = plt.subplots(
        len(signals), 1, figsize=(12, 3.5 + 2.5 * len(signals)), sharex=True, squeeze=False
    )
    for axis in axes[:, 0]:
        axis.grid(alpha=0.3)
    return figure, list(zip(signals, axes[:, 0], strict=True))


def _time_axis(axis: Any, label: str) -> None:
    locator = AutoDateLocator()
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axis.set_xlabel(label)


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _label(row: EvidenceRow) -> str:
    marginal = " [marginal]" if row.signal == "marginal" else ""
    return f"{row.job_name or row.job_id[:8]} {row.started_at:%m-%d %H:%M}{marginal}"


def _hline(
    axis: Any, start: Any, end: Any, y: float, color: str, width: float, label: str, seen: set[str]
) -> None:
    axis.plot(
        [start, end],
        [y, y],
        color=color,
        linewidth=width,
        label=None if label in seen else label,
        solid_capstyle="butt",
    )
    seen.add(label)


def _save(figure: Any, out: Path) -> None:
    figure.tight_layout()
    figure.savefig(out, dpi=DPI)
    plt.close(figure)
