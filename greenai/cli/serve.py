"""`greenai serve` and `greenai db upgrade` (the daemon's clients are in ``clients``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from greenai.cli.app import app, setting
from greenai.cli.display import stdout_console
from greenai.cli.errors import usage_errors
from greenai.core.errors import ConfigError, ProviderError
from greenai.core.settings import Settings, load_settings
from greenai.core.time import Clock, ScaledClock, format_time, utc_now

EXIT_API = 1
out = stdout_console()
err = Console(stderr=True, soft_wrap=True)  # messages name paths: never wrapped
Opt = typer.Option

db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings(**overrides: Any) -> Settings:
    with usage_errors():
        return load_settings(**overrides)


@app.command()
def serve(
    host: Annotated[str | None, Opt(help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, Opt(help="port to listen on" + setting("api_port"))] = None,
    tick: Annotated[
        float | None, Opt(help="seconds between re-plans" + setting("tick_seconds"))
    ] = None,
    gpu_slots: Annotated[
        str | None, Opt(help="GPU count or indices, e.g. 4 or 0,2" + setting("gpu_slots"))
    ] = None,
    home: Annotated[
        Path | None, Opt(help="state folder (database, logs, evidence)" + setting("home"))
    ] = None,
    database_url: Annotated[str | None, Opt(help="SQLAlchemy URL (default SQLite in home)")] = None,
    policy: Annotated[
        str | None,
        Opt(help="policy for jobs that name none (default fleet with GPU slots, else window)"),
    ] = None,
    executor: Annotated[
        str | None,
        Opt(help="what runs the jobs: local, slurm or kubernetes" + setting("executor")),
    ] = None,
    provider: Annotated[
        str | None,
        Opt(help="intensity source chain (default uk), e.g. 'uk:13,egrid:RFCE' or 'trace:FILE'"),
    ] = None,
    threshold: Annotated[
        float | None,
        Opt(help="gCO2/kWh for jobs of the threshold policy that name none" + setting("threshold")),
    ] = None,
    max_flexible_fraction: Annotated[
        float | None,
        Opt(
            help="fleet: at most this share of the queued GPU-hours waits for carbon (0-1)"
            + setting("max_flexible_fraction")
        ),
    ] = None,
    trace_start: Annotated[
        str | None,
        Opt(help="replaying a trace: the trace time 'now' maps to (default its first period)"),
    ] = None,
    trace_speed: Annotated[
        float | None, Opt(help="replaying a trace: trace seconds per wall second (default 1)")
    ] = None,
    meters: Annotated[
        str | None, Opt(help="auto (default), estimate, or a list such as 'nvml,codecarbon'")
    ] = None,
    power_watts: Annotated[
        float | None,
        Opt(
            help="declared draw of a job (W): replaces the meters when set" + setting("power_watts")
        ),
    ] = None,
    evidence: Annotated[Path | None, Opt(help="SCI CSV (default HOME/evidence.csv)")] = None,
    decision_log: Annotated[
        Path | None, Opt(help="decision log (default HOME/decisions.jsonl)")
    ] = None,
) -> None:
    """Run the daemon: durable queue, REST API, re-planning loop, GPU jobs run by an executor.

    With a ``trace:FILE`` provider the whole daemon (ticks, deadlines, planning) runs in the
    trace's time, ``--trace-speed`` times faster than the wall."""
    from greenai.daemon import Daemon
    from greenai.daemon.loop import configure_logging

    settings = _settings(
        api_host=host,
        api_port=port,
        tick_seconds=tick,
        gpu_slots=gpu_slots,
        home=home,
        database_url=database_url,
        policy=policy,
        executor=executor,
        provider=provider,
        threshold=threshold,
        max_flexible_fraction=max_flexible_fraction,
        trace_start=trace_start,
        trace_speed=trace_speed,
        meters=meters,
        power_watts=power_watts,
        evidence_file=evidence,
        decision_log=decision_log,
    )
    configure_logging(logging.INFO)
    with usage_errors():
        daemon = Daemon(settings)
        _say_if_unreachable(settings)  # once the settings are known to be good
        clean = daemon.serve_forever(on_ready=lambda url: _announce(url, daemon.run_clock))
    if not clean:  # a part of the daemon died: let the service manager restart it
        raise typer.Exit(EXIT_API)


PROBE_TIMEOUT_S = 3.0
OFFLINE_HINT = (
    "Offline? `./run.sh demo-daemon` replays the bundled 2023 GB trace "
    "(or: greenai serve --provider trace:FILE --trace-speed 600)."
)


def _say_if_unreachable(settings: Settings) -> None:
    """One line, before the daemon starts, when its intensity source cannot answer now:
    jobs would start without carbon data, and a user offline can replay a trace instead."""
    from greenai.providers import build_chain, parse_chain

    try:
        if any(name == "trace" for name, _ in parse_chain(settings.provider)):
            return
        quick = settings.model_copy(
            update={"request_retries": 0, "request_timeout": PROBE_TIMEOUT_S}
        )
        chain = build_chain(settings.provider, quick, use_cache=False)
    except ConfigError:
        return  # the daemon names a bad provider itself, and refuses to start
    try:
        chain.current(utc_now())
    except ProviderError as exc:
        err.print(
            f"greenai: {settings.provider} cannot be reached ({exc}); jobs start without "
            f"carbon data until it answers. {OFFLINE_HINT}",
            highlight=False,
            soft_wrap=True,
        )
    finally:
        chain.close()


def _announce(url: str, clock: Clock) -> None:
    out.print(f"greenai daemon listening on {url}", highlight=False)
    if isinstance(clock, ScaledClock):
        out.print(
            f"on trace time: now is {format_time(clock.now())}, running {clock.speed:g}x the "
            "wall clock",
            highlight=False,
        )


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, Opt(help="SQLAlchemy URL (default SQLite in home)")] = None,
) -> None:
    """Bring the database schema up to date (serve does this at start too)."""
    from greenai.storage.database import current_revision, make_engine, upgrade

    settings = _settings(database_url=database_url)
    with usage_errors():
        engine = make_engine(settings.resolved_database_url)
        upgrade(engine)
    out.print(f"database at revision {current_revision(engine)}")
    engine.dispose()
