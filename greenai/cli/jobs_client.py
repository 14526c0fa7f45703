"""A small HTTP client of the daemon's API for the CLI, and Rich tables of its answers."""

from __future__ import annotations

from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from greenai.core.errors import GreenAIError
from greenai.core.settings import Settings


class ApiError(GreenAIError):
    """The daemon refused a request (``status``) or could not be reached (``status`` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DaemonClient:
    """Calls the daemon at ``settings.resolved_api_url`` with its bearer token."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        headers = {}
        if settings.api_token is not None:
            headers["Authorization"] = f"Bearer {settings.api_token.get_secret_value()}"
        self.url = settings.resolved_api_url
        self._client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=settings.request_timeout,
            transport=transport,
        )

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach the daemon at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _problem(response))
        return response.json()


def _problem(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, d['loc'][1:]))}: {d['msg']}" for d in detail)
    return f"HTTP {response.status_code}: {detail}"


JOB_COLUMNS = ("id", "name", "state", "project", "planned_start", "deadline", "gpus")


def jobs_table(jobs: list[dict[str, Any]], title: str = "jobs") -> Table:
    table = Table(title=title)
    for column in JOB_COLUMNS:
        table.add_column(column, no_wrap=column == "id")
    for job in jobs:
        table.add_row(*(_cell(job.get(column)) for column in JOB_COLUMNS))
    return table


def print_job(console: Console, job: dict[str, Any]) -> None:
    """One job, its decisions and its runs."""
    details = Table(show_header=False, title=f"job {job['id']}")
    for key in (
        "name",
        "command",
        "state",
        "submitted_at",
        "planned_start",
        "deadline",
        "max_runtime_s",
        "started_at",
        "finished_at",
        "exit_code",
        "attempts",
        "gpu_ids",
        "log_path",
    ):
        details.add_row(key, _cell(job.get(key)))
    console.print(details)
    decisions = Table(title="decisions")
    for column in ("at", "action", "to_state", "reason"):
        decisions.add_column(column)
    for decision in job.get("decisions", []):
        decisions.add_row(*(_cell(decision.get(c)) for c in ("at", "action", "to_state", "reason")))
    console.print(decisions)
    for run in job.get("evidence", []):
        console.print(
            f"run {run['id']}: exit {run['exit_code']}, {_kwh(run['energy_kwh'])} "
            f"({run['meter']}), {_cell(run['operational_g'])} gCO2, saved {_cell(run['saved_g'])} g"
        )


def _kwh(value: float | None) -> str:
    return "energy not measured" if value is None else f"{value:.4f} kWh"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
