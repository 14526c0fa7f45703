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
    """Header with the source and current value, then one row per step, cleanest marked."""
    current = forecast.value_at(now) if forecast.covers(now) else None
    source = forecast.source + (f" (fallback: {forecast.fallback})" if forecast.fallback else "")
    console.print(f"[bold]source[/] {source}   [bold]signal[/] {forecast.signal.value}")
    if current is not None:
        console.print(f"[bold]now[/] {format_time(now)}: [bold]{current:g}[/] gCO2/kWh")
    if forecast.static:
        console.print("static annual average: no time of day is cleaner than another")
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
