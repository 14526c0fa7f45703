"""The greenai daemon's REST API as the Airflow operator and trigger use it (no Airflow here).

The token travels only in the ``Authorization`` header: it is never part of a message, an
exception, a trigger's serialised arguments or an XCom.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "expired", "rejected"})
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# What a job read says that the task log and XCom repeat: never its env, which the API
# withholds anyway, nor its argv (which may carry a secret the user put there).
SUMMARY_FIELDS = (
    "id", "name", "state", "planned_start", "started_at", "finished_at", "exit_code",
    "deadline", "submitted_at", "attempts", "policy", "provider",
)  # fmt: skip


class DaemonError(RuntimeError):
    """The daemon refused or could not be reached; the message never holds the token."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the daemon listens and the token it wants (``repr`` hides the token)."""

    url: str
    token: str | None

    def __repr__(self) -> str:
        return f"Endpoint(url={self.url!r}, token={'***' if self.token else None})"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @classmethod
    def of_connection(
        cls, host: str | None, port: int | None, schema: str | None, password: str | None
    ) -> Endpoint:
        """From an Airflow connection's fields: conn type ``http``, host (or a whole URL in
        host), port, schema (``http``/``https``), password = the daemon's API token."""
        if not host:
            raise DaemonError("the greenai connection has no host")
        if "://" in host:
            url = host
        else:
            url = f"{schema or 'http'}://{host}" + (f":{port}" if port else "")
        return cls(url.rstrip("/"), password or None)


def job_summary(job: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a job read that are safe to log and push to XCom."""
    summary = {name: job.get(name) for name in SUMMARY_FIELDS}
    decisions = job.get("decisions") or []
    summary["decisions"] = [
        {key: item.get(key) for key in ("at", "action", "reason", "to_state")} for item in decisions
    ]
    return summary


def submit_job(endpoint: Endpoint, body: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
    """``POST /jobs``; a retry with the same key returns the first job instead of a second."""
    headers = {**endpoint.headers, "Idempotency-Key": idempotency_key}
    with httpx.Client(base_url=endpoint.url, timeout=TIMEOUT) as client:
        response = _send(client, "POST", "/jobs", json=dict(body), headers=headers)
    return dict(response.json())


def cancel_job(endpoint: Endpoint, job_id: str) -> dict[str, Any]:
    """``POST /jobs/{id}/cancel`` (a job already final stays as it ended)."""
    with httpx.Client(base_url=endpoint.url, timeout=TIMEOUT) as client:
        response = _send(client, "POST", f"/jobs/{job_id}/cancel", headers=endpoint.headers)
    return dict(response.json())


async def read_job(client: httpx.AsyncClient, endpoint: Endpoint, job_id: str) -> dict[str, Any]:
    """``GET /jobs/{id}`` with the job's decisions and runs."""
    try:
        response = await client.get(f"/jobs/{job_id}", headers=endpoint.headers)
    except httpx.HTTPError as exc:
        raise DaemonError(f"greenai daemon at {endpoint.url} unreachable: {exc}") from exc
    _raise_for(response)
    return dict(response.json())


async def cancel_job_async(endpoint: Endpoint, job_id: str) -> dict[str, Any]:
    """``cancel_job`` for the triggerer's event loop."""
    async with httpx.AsyncClient(base_url=endpoint.url, timeout=TIMEOUT) as client:
        try:
            response = await client.post(f"/jobs/{job_id}/cancel", headers=endpoint.headers)
        except httpx.HTTPError as exc:
            raise DaemonError(f"greenai daemon at {endpoint.url} unreachable: {exc}") from exc
    _raise_for(response)
    return dict(response.json())


def _send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise DaemonError(f"greenai daemon at {client.base_url} unreachable: {exc}") from exc
    _raise_for(response)
    return response


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    hint = " (give the connection the token the daemon was started with)"
    raise DaemonError(
        f"greenai daemon: {response.request.method} {response.request.url.path} -> "
        f"{response.status_code}: {detail}" + (hint if response.status_code == 401 else "")
    )
