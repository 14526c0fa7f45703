"""How `greenai intensity` shows a forecast: a Rich table for people, JSON for programs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from greenai.core.domain import Forecast
from greenai.core.time import format_time


def forecast_json(forecast: Forecast, now: datetime) -> dict[str, Any]:
    """The forecast as one JSON object; ``current`` is the value of the step holding now."""
    current = forecast.value_at(now) if forecast.covers(now) else None
    return {
        "at": format_time(now),
        "source": forecast.source,
        "region": forecast.region,
        "signal": forecast.signal.value,
        "fallback": forecast.fallback,
        "static": forecast.static,
        "issued_at": format_time(forecast.issued_at),
        "warnings": list(forecast.warnings),
        "current": current,
        "step_s": forecast.step.total_seconds(),
        "forecast": [
            {
                "from": format_time(p.start),
                "to": format_time(p.start + forecast.step),
                "intensity": p.value,
            }
            for p in forecast.points
        ],
    }


def print_forecast(console: Console, forecast: Forecast, now: datetime) -> None:
    """Header with the source and current value, then one row per step, cleanest marked; a
    flat forecast (a static annual average) is one line: its rows would all be "cleanest"."""
    now = now.replace(microsecond=0)
    current = forecast.value_at(now) if forecast.covers(now) else None
    if len(set(forecast.values)) == 1:
        _print_flat(console, forecast, now)
        return
    console.print(
        f"[bold]source[/] {source_label(forecast)}   [bold]signal[/] {forecast.signal.value}"
    )
    if current is not None:
        console.print(f"[bold]now[/] {format_time(now)}: [bold]{current:g}[/] gCO2/kWh")
    for warning in forecast.warnings:
        console.print(f"[yellow]warning[/] {warning}")
    lowest = min(forecast.values)
    table = Table("from (UTC)", "to (UTC)", "gCO2/kWh", "")
    for point in forecast.points:
        mark = "cleanest" if point.value == lowest else ""
        table.add_row(
            format_time(point.start),
            format_time(point.start + forecast.step),
            f"{point.value:g}",
            mark,
        )
    console.print(table)


def source_label(forecast: Forecast) -> str:
    """``uk:13``; ``egrid:RFCE (fallback)`` when a later source of the chain stood in (the
    warning says for which); ``cache:uk:13 (cached)`` when a cached forecast did."""
    if forecast.fallback == "cache":
        return f"{forecast.source} (cached)"
    return forecast.source + (" (fallback)" if forecast.fallback else "")


def _print_flat(console: Console, forecast: Forecast, now: datetime) -> None:
    """``egrid:RFCE average: 298.2 gCO2/kWh, flat until ...: why``, then any other warning."""
    end = format_time(forecast.points[-1].start + forecast.step)
    why = "static annual average: no time of day is cleaner" if forecast.static else "flat"
    notes = list(forecast.warnings)
    if forecast.static and notes and "static" in notes[0]:
        why = notes.pop(0)  # the provider's own words for it
    console.print(
        f"[bold]{source_label(forecast)}[/] {forecast.signal.value}: "
        f"[bold]{forecast.values[0]:g}[/] gCO2/kWh at {format_time(now)} and until {end} ({why})"
    )
    for note in notes:
        console.print(f"[yellow]warning[/] {note}")
