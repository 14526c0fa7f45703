"""The daemon's clients: `submit`, `jobs`, `job`, `cancel` and `status` (Rich, or ``--json``).

Each takes ``--url`` and ``--token`` (else ``GREENAI_API_URL`` and ``GREENAI_API_TOKEN``). A
request the daemon finds invalid exits 2, like any usage error; every other failure (not
reachable, no or wrong token, unknown job) exits ``EXIT_DAEMON``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from greenai.cli.app import EXIT_DAEMON, EXIT_USAGE, app
from greenai.cli.display import stdout_console
from greenai.cli.errors import say, usage_errors
from greenai.cli.jobs_client import SHORT_ID, ApiError, DaemonClient, jobs_table, print_job
from greenai.cli.status_view import print_status
from greenai.core.settings import load_settings
from greenai.policies.registry import policy_names

out = stdout_console()
Opt = typer.Option

Url = Annotated[
    str | None,
    Opt(
        help="the daemon's URL (default: GREENAI_API_URL, else http://127.0.0.1:8787)",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    Opt(
        help="bearer token the daemon was given (default: GREENAI_API_TOKEN or the file named "
        "by GREENAI_API_TOKEN_FILE); never printed",
        show_default=False,
    ),
]
AsJson = Annotated[bool, Opt("--json", help="print the daemon's answer as JSON")]
POLL_S = 0.25


class Daemon:
    """One conversation with the daemon; its errors become a line and a documented exit."""

    def __init__(self, url: str | None, token: str | None) -> None:
        with usage_errors():
            settings = load_settings(api_url=url, api_token=token)
        self._client = DaemonClient(settings)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.__exit__()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self._client.call(method, path, **kwargs)
        except ApiError as exc:
            say(explain(exc, self._client.url))
            raise typer.Exit(EXIT_USAGE if exc.status == 422 else EXIT_DAEMON) from exc

    def optional(self, path: str) -> Any:
        """``GET path``, or ``None`` where this daemon has no such answer (yet)."""
        try:
            return self._client.call("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            say(explain(exc, self._client.url))
            raise typer.Exit(EXIT_DAEMON) from exc


def explain(exc: ApiError, url: str) -> str:
    """The daemon's refusal in words that say what to do about it."""
    if exc.status == 0:
        return f"{exc} (is `greenai serve` running there? else give --url or GREENAI_API_URL)"
    if exc.status == 401:
        return (
            f"the daemon at {url} refused the token (HTTP 401): give the token it was started "
            "with as --token or GREENAI_API_TOKEN"
        )
    if exc.status == 422:  # "duration: is longer ..." names the flag: "--duration is longer"
        return re.sub(r"(^|; )(\w+): ", lambda m: f"{m[1]}--{m[2].replace('_', '-')} ", str(exc))
    return str(exc)


def _emit(data: Any, as_json: bool) -> bool:
    if as_json:
        out.print_json(json.dumps(data))
    return as_json


@app.command(context_settings={"allow_interspersed_args": False})
def submit(
    command: Annotated[list[str], typer.Argument(help="the command, after --")],
    duration: Annotated[str, Opt(help="estimated run time, e.g. 2h", show_default=False)],
    deadline: Annotated[
        str | None,
        Opt(help="latest finish, ISO-8601 UTC (default: now + --max-delay + --duration)"),
    ] = None,
    max_delay: Annotated[
        str | None, Opt(help="or: longest wait before starting, e.g. 6h (default: the daemon's)")
    ] = None,
    max_runtime: Annotated[
        str | None, Opt(help="stop a run this long after it starts (default: no limit)")
    ] = None,
    name: Annotated[
        str | None, Opt(help="a label for lists (default: the command's program name)")
    ] = None,
    gpus: Annotated[int, Opt(min=1, help="GPUs the job needs, all at once")] = 1,
    project: Annotated[
        str | None,
        Opt(help="a label to filter and report by (jobs --project, report) (default: none)"),
    ] = None,
    policy: Annotated[
        str | None,
        Opt(help=f"{' | '.join(policy_names(online=True))} (default: the daemon's)"),
    ] = None,
    threshold: Annotated[
        float | None,
        Opt(help="gCO2/kWh to run at or below (threshold policy) (default: the daemon's)"),
    ] = None,
    on_deadline: Annotated[
        str, Opt(help="run: start anyway at the last moment; expire: give up")
    ] = "run",
    interruptible: Annotated[
        bool, Opt(help="may be paused and resumed (it checkpoints on the pause signal)")
    ] = False,
    flexible: Annotated[bool, Opt(help="--no-flexible: rigid, start when a slot is free")] = True,
    power_kw: Annotated[
        float | None,
        Opt(
            min=0,
            max=1000,
            help="the job's draw in kW, for its carbon-budget estimate (default: the daemon's "
            "GREENAI_POWER_WATTS, else its GPUs' TDP)",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None, Opt(help="retries with this key make one job (default: none)")
    ] = None,
    wait: Annotated[
        float, Opt(min=0, help="seconds to wait for the daemon's plan before answering")
    ] = 5.0,
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Queue a job on the daemon and say when it is planned to run, and why.

    Example: greenai submit --duration 2h --deadline 2026-01-02T08:00Z -- python train.py"""
    body = {
        "command": command,
        "duration": duration,
        "deadline": deadline,
        "max_delay": max_delay,
        "max_runtime": max_runtime,
        "name": name,
        "gpus": gpus,
        "project": project,
        "policy": policy,
        "threshold": threshold,
        "on_deadline": on_deadline,
        "interruptible": interruptible,
        "flexible": flexible,
        "power_kw": power_kw,
        "cwd": str(Path.cwd()),
    }
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with Daemon(url, token) as daemon:
        job = daemon.call(
            "POST", "/jobs", json={k: v for k, v in body.items() if v is not None}, headers=headers
        )
        if _emit(job, as_json):
            return
        planned = _wait_for_plan(daemon, job["id"], wait)
    out.print(submitted_line(job, planned), highlight=False)


def _wait_for_plan(daemon: Daemon, job_id: str, wait: float) -> dict[str, Any] | None:
    """The job once the daemon has taken a decision about it (its next tick), or ``None``."""
    give_up = time.monotonic() + wait
    while time.monotonic() < give_up:
        detail: dict[str, Any] = daemon.call("GET", f"/jobs/{job_id}")
        if detail.get("decisions"):
            return detail
        time.sleep(POLL_S)
    return None


def submitted_line(job: dict[str, Any], planned: dict[str, Any] | None) -> str:
    """``job 1a2b3c4d (train) planned for <start>, deadline <deadline>: <the plan's reason>``,
    the reason of the daemon's latest plan for it (a decision that left it scheduled)."""
    head = f"job {job['id'][:SHORT_ID]} ({job['name']})"
    if planned is None:
        return (
            f"{head} queued, deadline {_second(job['deadline'])}; the daemon plans it at its "
            f"next tick: greenai job {job['id'][:SHORT_ID]}"
        )
    decisions = planned["decisions"]
    plans = [d for d in decisions if d["to_state"] == "scheduled"] or decisions
    start = planned.get("planned_start") or planned.get("started_at")
    line = f"{head} planned for {_second(start)}, deadline {_second(planned['deadline'])}: "
    line += plans[-1]["reason"]
    return line if planned["state"] == "scheduled" else f"{line} (now {planned['state']})"


def _second(value: str | None) -> str:
    return "-" if value is None else value[:19] + "Z"


@app.command("jobs")
def list_jobs(
    state: Annotated[
        list[str] | None, Opt(help="only jobs in this state; repeatable (default: all)")
    ] = None,
    project: Annotated[str | None, Opt(help="only jobs of this project (default: all)")] = None,
    limit: Annotated[int, Opt(min=1, max=1000, help="at most this many jobs")] = 50,
    offset: Annotated[int, Opt(min=0, help="skip this many of the newest first")] = 0,
    wide: Annotated[bool, Opt(help="whole ids and times, and every column")] = False,
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List the daemon's jobs, newest first, in 80 columns.

    Ids are cut to 8 characters: any unique prefix of an id works wherever one is asked for."""
    params: dict[str, Any] = {"limit": limit, "offset": offset, "state": state or []}
    if project:
        params["project"] = project
    with Daemon(url, token) as daemon:
        page = daemon.call("GET", "/jobs", params=params)
    if not _emit(page, as_json):
        title = f"jobs ({len(page['items'])} of {page['total']})"
        out.print(jobs_table(page["items"], title, wide=wide))


JobIdArg = Annotated[str, typer.Argument(help="the job's id, or any unique prefix of it")]


@app.command("job")
def show_job(
    job_id: JobIdArg, url: Url = None, token: Token = None, as_json: AsJson = False
) -> None:
    """One job with its decisions and evidence."""
    with Daemon(url, token) as daemon:
        job = daemon.call("GET", f"/jobs/{job_id}")
    if not _emit(job, as_json):
        print_job(out, job)


@app.command()
def cancel(job_id: JobIdArg, url: Url = None, token: Token = None, as_json: AsJson = False) -> None:
    """Cancel a waiting job, or stop a running one."""
    with Daemon(url, token) as daemon:
        job = daemon.call("POST", f"/jobs/{job_id}/cancel")
    if not _emit(job, as_json):
        note = " (stopping)" if job["cancel_requested"] and job["state"] == "running" else ""
        out.print(f"job {job['id']} {job['state']}{note}", highlight=False)


@app.command()
def status(url: Url = None, token: Token = None, as_json: AsJson = False) -> None:
    """The daemon on one screen: the queue, running jobs, CO2 saved and the provider."""
    with Daemon(url, token) as daemon:
        seen = {
            "summary": daemon.optional("/summary"),
            "health": daemon.call("GET", "/healthz"),
            "running": daemon.call("GET", "/jobs", params={"state": ["running"], "limit": 20}),
            "intensity": daemon.optional("/intensity"),
        }
    if not _emit(seen, as_json):
        print_status(out, seen)
