"""How `greenai status` shows the daemon on one screen: health and clock, the queue by state,
the running jobs, what the finished runs emitted and saved, and the intensity source."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from greenai.cli.jobs_client import jobs_table


def print_status(console: Console, seen: dict[str, Any]) -> None:
    """``seen``: the daemon's /summary (``None`` on a daemon without it), /healthz, the
    running jobs' page of /jobs and /intensity (``None`` before its first forecast)."""
    summary, health = seen["summary"], seen["health"]
    console.print(_health_line(summary, health), highlight=False)
    if summary is not None:
        console.print(_queue_table(summary["states"]))
    running = seen["running"]
    if running["items"]:
        console.print(jobs_table(running["items"], f"running ({running['total']})"))
    else:
        console.print("running: none", highlight=False)
    if summary is not None:
        console.print(_totals_line(summary["totals"]), highlight=False)
    console.print(_provider_line(seen["intensity"], summary), highlight=False)


def _health_line(summary: dict[str, Any] | None, health: dict[str, Any]) -> str:
    line = f"daemon {health['status']}, {health['ticks']} ticks"
    if summary is not None:
        threshold = summary["threshold"]
        line += f", clock {summary['now'][:19]}Z, default policy {summary['policy']}"
        line += f" (threshold {threshold:g} gCO2/kWh)" if threshold is not None else ""
    problems = health.get("problems") or []
    return line + (": " + "; ".join(problems) if problems else "")


def _queue_table(states: list[dict[str, Any]]) -> Table:
    """Jobs per state, the queue's states before the history's, only states that hold jobs."""
    table = Table("state", "jobs", "", title="queue", title_justify="left")
    for state in sorted(states, key=lambda s: s["final"]):
        if state["count"]:
            table.add_row(state["state"], str(state["count"]), "history" if state["final"] else "")
    if not table.row_count:
        table.add_row("(no jobs yet)", "0", "")
    return table


def _totals_line(totals: dict[str, Any]) -> str:
    return (
        f"finished runs: {totals['runs']}, {totals['energy_kwh']:.3f} kWh, "
        f"{totals['operational_g']:.1f} gCO2 emitted, {totals['saved_g']:.1f} gCO2 saved "
        "against running each job when it was submitted"
    )


def _provider_line(intensity: dict[str, Any] | None, summary: dict[str, Any] | None) -> str:
    if intensity is None:
        line = "provider: no forecast yet (the daemon fetches one at its next tick)"
    else:
        source = intensity["source"] + (" (fallback)" if intensity["fallback"] else "")
        now = intensity["current"]
        value = f"{now:g} gCO2/kWh now" if now is not None else "no value for now"
        line = f"provider: {source}, {intensity['signal']}, {value}"
    if summary is not None:
        loop = summary["loop"]
        line += f"; {loop['provider_errors']} failed refreshes, {loop['fallbacks']} fallbacks"
    return line
