"""``greenai simulate``: replay a policy on a recorded trace and print the §3 result JSON."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from greenai.cli.app import EXIT_USAGE, app
from greenai.cli.errors import usage_errors, writable_file
from greenai.core.errors import ConfigError, GreenAIError
from greenai.core.settings import BudgetSpec
from greenai.formats.traces import Trace
from greenai.policies.registry import policy_names
from greenai.simulate import BudgetSettings, SimulationSettings, run_files, simulate

PLOT_POLICIES = ("now", "threshold", "window", "interruptible", "oracle")


@app.command("simulate")
def simulate_command(
    trace: Annotated[Path, typer.Option(help="Intensity trace CSV (docs/formats.md §1).")],
    workload: Annotated[Path, typer.Option(help="Workload CSV (docs/formats.md §2).")],
    policy: Annotated[str, typer.Option(help=f"{', '.join(policy_names())}.")] = "window",
    forecast: Annotated[
        str, typer.Option(help="perfect, noisy:SIGMA, persistence or trace.")
    ] = "perfect",
    horizon_h: Annotated[float, typer.Option(help="Forecast horizon in hours.")] = 48.0,
    seed: Annotated[int, typer.Option(help="Seed of noisy forecasts.")] = 0,
    threshold: Annotated[
        float | None, typer.Option(help="gCO2/kWh for --policy threshold (default: 7-day mean).")
    ] = None,
    capacity: Annotated[
        int | None,
        typer.Option(help="GPU slots shared by all jobs (default: as many as the jobs need)."),
    ] = None,
    debias_h: Annotated[
        float, typer.Option(help="Hours of past forecast errors used to remove bias (0: off).")
    ] = 24.0,
    max_flexible_fraction: Annotated[
        float | None,
        typer.Option(
            help="fleet: at most this share of queued GPU-hours waits for carbon (default: no cap)."
        ),
    ] = None,
    budget_kg: Annotated[
        float | None,
        typer.Option(
            help="Carbon budget in kgCO2e per --budget-period for all the jobs: a job that would "
            "overrun it is held until the period rolls over, or rejected (default: no budget)."
        ),
    ] = None,
    budget_period: Annotated[
        str, typer.Option(help="How often the budget rolls over, e.g. 24h, 7d (at most 366d).")
    ] = "7d",
    out: Annotated[
        Path | None,
        typer.Option(help="Write the JSON here and print a summary (default: JSON to stdout)."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Also draw a PNG here (default: no plot).")
    ] = None,
) -> None:
    """Replay a policy on a recorded trace, measured against the offline optimum."""
    with usage_errors():
        settings = SimulationSettings(
            policy, forecast, seed, horizon_h, threshold, capacity, debias_h,
            max_flexible_fraction, budget_settings(budget_kg, budget_period),
        )  # fmt: skip
        writable_file(out, "--out")  # before the work, not after it
        writable_file(plot, "--plot")
        try:
            result, loaded, jobs = run_files(trace, workload, settings)
            if plot is not None:
                _plot(loaded, jobs, settings, result, plot)
        except GreenAIError as exc:
            print(f"greenai simulate: {exc}", file=sys.stderr)
            raise typer.Exit(EXIT_USAGE) from exc
        text = json.dumps(result, indent=1)
        if out is None:
            print(text)
            return
        out.write_text(text + "\n", encoding="utf-8")
    print(summary_line(result))
    print(f"result written to {out}" + (f", plot to {plot}" if plot else ""))


def budget_settings(kg: float | None, period: str) -> BudgetSettings | None:
    """``--budget-kg`` and ``--budget-period`` checked as a daemon's budget is; none without
    ``--budget-kg``."""
    if kg is None:
        return None
    try:
        spec = BudgetSpec.model_validate({"kg": kg, "period": period})
    except ValidationError as exc:
        error = exc.errors()[0]
        flag = f"--budget-{error['loc'][0]}"
        raise ConfigError(f"{flag}: {error['msg']}") from None
    return BudgetSettings(spec.kg, spec.period)


def summary_line(result: dict[str, Any]) -> str:
    """What a person reads first when the JSON went to a file: emissions against running
    every job at submit, and what it cost in deadlines and delay."""
    r = result
    return (
        f"{r['policy']} on {r['trace']} (forecast {r['forecast']}): {r['jobs']} jobs, "
        f"{r['emissions_kg']:.1f} kgCO2 vs {r['baseline_emissions_kg']:.1f} run at submit "
        f"({r['savings_pct']:.1f}% saved), {r['sla_violations']} missed deadlines, "
        f"mean delay {r['mean_delay_min']:.0f} min"
    )


def _plot(
    trace: Trace, jobs: list[Any], settings: SimulationSettings, result: dict[str, Any], path: Path
) -> None:
    from greenai.simulate.plot import plot_result  # matplotlib only when a plot is asked for

    savings = {}
    for name in dict.fromkeys((*PLOT_POLICIES, settings.policy)):
        other = (
            result
            if name == settings.policy
            else simulate(trace, jobs, replace(settings, policy=name, max_flexible_fraction=None))
        )
        savings[name] = float(other["savings_pct"])
    plot_result(trace, result, savings, path)
