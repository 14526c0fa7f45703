"""`greenai run` (wait for a cleaner grid, then run a command measured) and `greenai intensity`."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from greenai.cli.app import (
    EXIT_CANNOT_START,
    EXIT_NO_SIGNAL,
    EXIT_PROVIDERS_FAILED,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_TIMED_OUT,
    EXIT_USAGE,
    app,
    setting,
)
from greenai.cli.display import DeferralDisplay, stdout_console
from greenai.cli.errors import writable_folder
from greenai.cli.intensity_view import forecast_json, print_forecast
from greenai.cli.run_submit import submit_and_print
from greenai.core.domain import Action
from greenai.core.errors import ConfigError, ExecutorError, GreenAIError, NoSignalError
from greenai.evidence.decisions import encode_decision
from greenai.oneshot import session as wiring
from greenai.oneshot.child import Finished
from greenai.oneshot.flow import (
    OneShot,
    decide_on_source,
    record_run,
    run_measured,
    wait_for_start,
)
from greenai.policies.registry import policy_names

log = logging.getLogger(__name__)
err = Console(stderr=True, soft_wrap=True)  # messages name paths: never wrapped

Opt = typer.Option
POLICY_CHOICES = " | ".join(policy_names(online=True))

# Options `run` and `intensity` share, spelt once.
Provider = Annotated[
    str | None, Opt(help="sources in order, e.g. uk:13,egrid:RFCE" + setting("provider"))
]
AsJson = Annotated[bool, Opt("--json", help="machine-readable output")]
TraceStart = Annotated[str | None, Opt(help="trace time that now maps to" + setting("trace_start"))]
TraceSignal = Annotated[
    str | None,
    Opt(
        help="average | marginal: a trace's values, where its header does not say"
        + setting("trace_signal")
    ),
]
ConfigFile = Annotated[
    Path | None, Opt(help="greenai.toml to read (default: GREENAI_CONFIG, else ./greenai.toml)")
]


@app.command(
    context_settings={"allow_interspersed_args": False},
    epilog="Example: greenai run --threshold 150 --defer-seconds 3600 -- python train.py",
)
def run(
    command: Annotated[list[str] | None, typer.Argument(help="the command, after --")] = None,
    threshold: Annotated[
        float | None, Opt(help="run when intensity <= this (gCO2/kWh)" + setting("threshold"))
    ] = None,
    defer_seconds: Annotated[
        float | None, Opt(help="longest wait before running anyway (s)" + setting("defer_seconds"))
    ] = None,
    check_interval: Annotated[
        float | None, Opt(help="seconds between checks" + setting("check_interval"))
    ] = None,
    policy: Annotated[str | None, Opt(help=f"{POLICY_CHOICES} (default threshold)")] = None,
    duration: Annotated[
        str | None, Opt(help="expected run time, e.g. 2h (window)" + setting("duration"))
    ] = None,
    deadline: Annotated[
        str | None, Opt(help="latest finish, ISO-8601 UTC" + setting("deadline"))
    ] = None,
    max_runtime: Annotated[
        str | None,
        Opt(help="stop the command this long after it starts, e.g. 2h (default: no limit)"),
    ] = None,
    provider: Provider = None,
    require_signal: Annotated[
        bool | None,
        Opt(
            "--require-signal/--no-require-signal",
            help="exit 3 with no signal" + setting("require_signal"),
        ),
    ] = None,
    dry_run: Annotated[bool, Opt(help="print the decision and exit")] = False,
    as_json: AsJson = False,
    trace_start: TraceStart = None,
    trace_speed: Annotated[
        float | None, Opt(help="trace seconds per wall second" + setting("trace_speed"))
    ] = None,
    trace_signal: TraceSignal = None,
    shell: Annotated[
        bool | None, Opt("--shell/--no-shell", help="run via /bin/sh" + setting("shell"))
    ] = None,
    gpus: Annotated[
        str | None, Opt(help="GPU indices the job uses, e.g. 0,1" + setting("gpus"))
    ] = None,
    power_watts: Annotated[
        float | None,
        Opt(
            help="declared draw of the whole job (W): used instead of the meters, never "
            "beside them (an error with a named GREENAI_METERS list)" + setting("power_watts")
        ),
    ] = None,
    functional_unit: Annotated[
        str | None, Opt(help="SCI functional unit" + setting("functional_unit"))
    ] = None,
    units: Annotated[
        float | None, Opt(help="functional units one run yields" + setting("units"))
    ] = None,
    job_name: Annotated[
        str | None, Opt(help="name in the evidence (default: the program's name)")
    ] = None,
    home: Annotated[Path | None, Opt(help="state folder" + setting("home"))] = None,
    evidence_file: Annotated[
        Path | None, Opt("--evidence", help="SCI CSV path (default: HOME/evidence.csv)")
    ] = None,
    decision_log: Annotated[
        Path | None, Opt(help="decision JSONL path (default: HOME/decisions.jsonl)")
    ] = None,
    config: ConfigFile = None,
    submit: Annotated[
        str | None,
        Opt(
            help="slurm: hand CMD to Slurm held until the decided start (sbatch --begin), "
            "print its job id and exit (default: wait and run it here)"
        ),
    ] = None,
) -> None:
    """Wait for a cleaner grid (or until the deferral budget is spent), then run CMD.

    CMD runs under energy measurement, and its SCI evidence row is appended."""
    with _translate_errors(no_signal_exit=EXIT_NO_SIGNAL):
        settings = wiring.settings_from_flags(
            config,
            threshold=threshold,
            defer_seconds=defer_seconds,
            check_interval=check_interval,
            policy=policy,
            duration=duration,
            deadline=deadline,
            provider=provider,
            require_signal=require_signal,
            trace_start=trace_start,
            trace_speed=trace_speed,
            trace_signal=trace_signal,
            shell=shell,
            gpus=gpus,
            power_watts=power_watts,
            functional_unit=functional_unit,
            units=units,
            home=home,
            evidence_file=evidence_file,
            decision_log=decision_log,
        )
        if not command and not dry_run:
            raise ConfigError("command: nothing to run; put it after --, e.g. -- python train.py")
        if not dry_run:  # a path that cannot be written fails now, not after the wait
            writable_folder(settings.home, "--home")
            writable_folder(settings.evidence_path.parent, "--evidence")
            writable_folder(settings.decision_log_path.parent, "--decision-log")
        session = wiring.build_session(settings)
        argv = list(command or [])
        oneshot = wiring.build_oneshot(settings, session.clock.now(), argv, job_name, max_runtime)
        if dry_run:
            _print_dry_run(session, oneshot, as_json)
            return
        if submit is not None:
            submit_and_print(submit, session, oneshot, argv, as_json)
            return
        code = _run_for_real(session, oneshot, argv, settings.shell)
    raise typer.Exit(code)


def _print_dry_run(session: wiring.Session, oneshot: OneShot, as_json: bool) -> None:
    now = session.clock.now()
    decision = decide_on_source(oneshot, session.deps, now)
    if as_json:
        typer.echo(encode_decision(decision))
    else:
        typer.echo(f"{decision.action.value}: {decision.reason}")


def _run_for_real(session: wiring.Session, oneshot: OneShot, argv: list[str], shell: bool) -> int:
    deps = session.deps
    with DeferralDisplay(err) as display, _cancel_on_signals(deps.cancel, deps.cancel_reason):
        deps.on_defer = display.show
        decision, forecast = wait_for_start(oneshot, deps)
    if decision.action is Action.EXPIRE:
        err.print(f"greenai: {decision.reason}", highlight=False, soft_wrap=True)
        return EXIT_SIGTERM if "SIGTERM" in decision.reason else EXIT_SIGINT
    err.print(f"greenai: start: {decision.reason}", highlight=False, soft_wrap=True)
    completed = run_measured(
        argv, shell=shell, oneshot=oneshot, decision=decision, forecast=forecast, deps=deps
    )
    record = record_run(deps, completed)
    for note in completed.finished.notes:
        err.print(f"greenai: {note}", highlight=False, soft_wrap=True)
    err.print(
        wiring.summary_line(record, session.settings.evidence_path), highlight=False, soft_wrap=True
    )
    return exit_code_of(completed.finished)


def exit_code_of(finished: Finished) -> int:
    """The command's exit status as a shell reports it (128 + N when signal N ended it); a
    command stopped at its max runtime that still exits 0 did not finish: 124, as timeout(1)."""
    if finished.limit is not None and finished.exit_code == 0:
        return EXIT_TIMED_OUT
    return finished.exit_code


@contextmanager
def _cancel_on_signals(cancel: threading.Event, reasons: list[str]) -> Iterator[None]:
    """While deferring, SIGINT/SIGTERM cancel the wait instead of killing greenai outright,
    so the decision log says what happened."""

    def handler(signum: int, _frame: object) -> None:
        reasons.append(f"interrupted by {signal.Signals(signum).name}")
        cancel.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@app.command()
def intensity(
    provider: Provider = None,
    as_json: AsJson = False,
    trace_start: TraceStart = None,
    trace_signal: TraceSignal = None,
    hours: Annotated[
        float | None, Opt(help="forecast hours to show" + setting("horizon_hours"))
    ] = None,
    config: ConfigFile = None,
) -> None:
    """Show the current intensity and the forecast, and which source answered."""
    with _translate_errors(no_signal_exit=EXIT_PROVIDERS_FAILED):
        settings = wiring.settings_from_flags(
            config,
            provider=provider,
            trace_start=trace_start,
            trace_signal=trace_signal,
            horizon_hours=hours,
        )
        session = wiring.build_session(settings)
        if session.deps.source is None:
            raise NoSignalError("greenai", "no intensity provider configured")
        now = session.clock.now()
        forecast = session.deps.source.forecast(now, session.deps.horizon)
        if as_json:
            typer.echo(json.dumps(forecast_json(forecast, now)))
        else:
            print_forecast(stdout_console(), forecast, now)


@contextmanager
def _translate_errors(no_signal_exit: int) -> Iterator[None]:
    """greenai's own errors become a message and a documented exit code, never a traceback."""
    try:
        yield
    except NoSignalError as exc:
        err.print(f"greenai: no intensity signal: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(no_signal_exit) from exc
    except ExecutorError as exc:
        err.print(f"greenai: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_CANNOT_START) from exc
    except ConfigError as exc:
        err.print(f"greenai: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from exc
    except GreenAIError as exc:
        err.print(f"greenai: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_PROVIDERS_FAILED) from exc
    except OSError as exc:  # an evidence or log path that cannot be written
        if exc.filename is None:
            raise
        err.print(f"greenai: cannot write {exc.filename}: {exc.strerror}", markup=False)
        raise typer.Exit(EXIT_USAGE) from exc
