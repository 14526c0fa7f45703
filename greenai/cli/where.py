"""`greenai where`: which configured location (and start) is greenest for one job, with the
cost of moving its data; 80 columns, or ``--json`` (the shape of ``GET /locations/best``)."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from typer import Option as Opt

from greenai.cli.app import app
from greenai.cli.errors import usage_errors
from greenai.core.errors import ConfigError
from greenai.core.time import parse_time
from greenai.oneshot.session import settings_from_flags
from greenai.oneshot.where import (
    LocationForecasts,
    answer,
    parse_data,
    parse_job_duration,
    power_for,
    ranking_json,
)
from greenai.policies.where import Question, Ranking, duration_text
from greenai.policies.where_words import size_text

WIDTH = 80
DEFAULT_DEADLINE = timedelta(hours=48)


@app.command("where")
def where(
    duration: Annotated[str, Opt(help="how long the job runs, e.g. 2h")],
    data: Annotated[
        str | None,
        Opt(
            help="its input: SIZE@LOCATION, e.g. 40TB@PJM (decimal units; default: no "
            "input to move)"
        ),
    ] = None,
    locations: Annotated[
        str | None, Opt(help="candidates, e.g. PJM,ON (default: every configured location)")
    ] = None,
    deadline: Annotated[
        str | None, Opt(help="latest finish, ISO-8601 UTC (default: 48 h from now)")
    ] = None,
    residency: Annotated[
        str | None, Opt(help="a data-residency tag the place must meet (default: none)")
    ] = None,
    gpus: Annotated[int, Opt(min=1, help="GPUs the job needs")] = 1,
    power_kw: Annotated[
        float | None, Opt(min=0, help="the job's draw in kW (default: power_watts, else 0.7/GPU)")
    ] = None,
    usd_per_kg: Annotated[
        float | None, Opt(min=0, help="carbon price: weigh egress $ against kg (default: none)")
    ] = None,
    at: Annotated[
        str | None, Opt(help="plan as of this time, ISO-8601 UTC (default: now; traces: in them)")
    ] = None,
    as_json: Annotated[bool, Opt("--json", help="machine-readable output")] = False,
    config: Annotated[
        Path | None,
        Opt(help="greenai.toml to read (default: GREENAI_CONFIG, else ./greenai.toml)"),
    ] = None,
) -> None:
    """Rank locations for one job: carbon of the best start, data transfer time and egress."""
    with usage_errors():
        settings = settings_from_flags(config)
        now = _time("--at", at) if at else datetime.now(UTC)
        data_gb, data_at = parse_data(data) if data else (0.0, None)
        kw, power = power_for(gpus, power_kw, settings)
        question = Question(
            now=now,
            duration=parse_job_duration(duration, "--duration"),
            deadline=_time("--deadline", deadline) if deadline else now + DEFAULT_DEADLINE,
            power_kw=kw,
            gpus=gpus,
            data_gb=data_gb,
            data_at=data_at,
            residency=residency,
            usd_per_kg=usd_per_kg,
        )
        names = [n.strip() for n in locations.split(",") if n.strip()] if locations else None
        forecasts = LocationForecasts(settings)
        try:
            ranking, why = answer(forecasts, question, names)
        finally:
            forecasts.close()
    if as_json:
        typer.echo(json.dumps(ranking_json(ranking, question, why, power)))
        return
    for line in ranking_lines(ranking, question, why, power):
        typer.echo(line)


def _time(flag: str, text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ConfigError(f"{flag}: {text!r} is not an ISO-8601 time") from exc


def ranking_lines(ranking: Ranking, question: Question, why: str, power: str) -> list[str]:
    """The ranking as lines of at most ``WIDTH`` characters."""
    data = f", {size_text(question.data_gb)} at {question.data_at}" if question.data_gb else ""
    head = (
        f"where: {_hours(question.duration)} job, {question.gpus} GPU(s), "
        f"{question.power_kw:g} kW ({power}){data}, by {question.deadline:%Y-%m-%d %H:%M}Z"
    )
    lines = _wrap(head)
    lines.append(
        f"{'#':>2}  {'location':<10}{'start UTC':<17}{'g/kWh':>7}{'job kg':>9}"
        f"{'move':>9}{'egress $':>10}{'total kg':>10}"
    )
    for rank, option in enumerate(ranking.ranked, start=1):
        start = f"{option.start:%m-%d %H:%M}" if option.start else "-"
        move = duration_text(option.transfer_s) if option.transfer_s else "-"
        lines.append(
            f"{rank:>2}  {option.location[:9]:<10}{start:<17}{option.mean_intensity or 0:>7.1f}"
            f"{option.job_kg:>9.2f}{move:>9}{option.egress_usd:>10,.0f}{option.total_kg:>10.2f}"
        )
    for option in ranking.excluded:
        lines += _wrap(f"out: {option.location}: {option.why_not}")
    lines += _wrap(f"why: {why}")
    for note in ranking.notes:
        lines += _wrap(f"note: {note}")
    return lines


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent="  ", break_long_words=True)


def _hours(duration: timedelta) -> str:
    return f"{duration.total_seconds() / 3600:g} h"
