"""A small HTTP client of the daemon's API for the CLI, and Rich tables of its answers."""

from __future__ import annotations

from typing import Any

import httpx
from rich import box
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


SHORT_ID = 8  # characters of a job id shown in lists; any unique prefix is accepted back
WIDE_COLUMNS = ("id", "name", "state", "project", "policy", "gpus", "submitted_at",
                "planned_start", "deadline")  # fmt: skip
# (column, header, widest): what fits 80 columns, names and projects cut with an ellipsis
NARROW_COLUMNS = (
    ("id", "id", SHORT_ID),
    ("name", "name", 14),
    ("state", "state", 9),
    ("project", "project", 8),
    ("gpus", "gpus", 4),
    ("planned_start", "start UTC", 11),
    ("deadline", "deadline UTC", 12),
)


def jobs_table(jobs: list[dict[str, Any]], title: str = "jobs", wide: bool = False) -> Table:
    """Fits 80 columns: short ids, times to the minute; ``wide``: full ids and times."""
    if wide:
        table = Table(title=title, title_justify="left")
        for column in WIDE_COLUMNS:
            table.add_column(column, no_wrap=True)
        for job in jobs:
            table.add_row(*(_cell(_seconds(job.get(column))) for column in WIDE_COLUMNS))
        return table
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for _, header, widest in NARROW_COLUMNS:
        table.add_column(header, max_width=widest, no_wrap=True, overflow="ellipsis")
    for job in jobs:
        row = dict(job, id=job["id"][:SHORT_ID])
        row["planned_start"] = _minute(job.get("planned_start"))
        row["deadline"] = _minute(job.get("deadline"))
        table.add_row(*(_cell(row.get(column)) for column, _, _ in NARROW_COLUMNS))
    return table


def _minute(value: str | None) -> str | None:
    """``12-03 15:18`` from an ISO time: a list needs no year, seconds or microseconds."""
    return None if value is None else f"{value[5:10]} {value[11:16]}"


def _seconds(value: Any) -> Any:
    """An ISO time without its microseconds (``2026-12-03T15:18:46Z``); others as they are."""
    if isinstance(value, str) and len(value) > 19 and value[10:11] == "T" and value[19] == ".":
        return value[:19] + "Z"
    return value


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
        details.add_row(key, _cell(_seconds(job.get(key))))
    console.print(details)
    decisions = Table(title="decisions")
    for column in ("at", "action", "to_state", "reason"):
        decisions.add_column(column)
    for decision in job.get("decisions", []):
        decisions.add_row(
            *(_cell(_seconds(decision.get(c))) for c in ("at", "action", "to_state", "reason"))
        )
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
