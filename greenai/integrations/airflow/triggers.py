"""The triggers the operators defer on, in the triggerer (no worker slot held).

``GreenStartTrigger`` waits on the wall until a green start and hands the decision back in its
event (``airflow dags test`` passes a resumed task the event alone, not the defer's kwargs).
``GreenaiJobTrigger`` polls a daemon's job; its serialised arguments hold the connection id
and the job id, never the token: the connection is read again wherever the trigger runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from greenai.core.time import parse_time, utc_now
from greenai.integrations.airflow.client import (
    FINAL_STATES,
    TIMEOUT,
    DaemonError,
    Endpoint,
    cancel_job_async,
    job_summary,
    read_job,
)

MAX_FAILED_READS = 10  # reads in a row that fail (daemon restarting) before the task fails
MAX_SLEEP_S = 60.0  # a long wait sleeps in steps, so a triggerer's clock jump is caught up


class GreenStartTrigger(BaseTrigger):
    """Fires at ``moment`` (wall time, ISO-8601 UTC) with ``{"green": green, "deferred_wall"}``:
    the decision the task deferred on, and when on the wall it began to wait."""

    def __init__(self, moment: str, green: dict[str, Any], deferred_wall: str) -> None:
        super().__init__()
        self.moment = moment
        self.green = green
        self.deferred_wall = deferred_wall

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"moment": self.moment, "green": self.green, "deferred_wall": self.deferred_wall},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        moment: datetime = parse_time(self.moment)
        while (left := (moment - utc_now()).total_seconds()) > 0:
            await asyncio.sleep(min(left, MAX_SLEEP_S))
        self.log.info("green start reached: %s", self.green["decision"]["planned_start"])
        yield TriggerEvent({"green": self.green, "deferred_wall": self.deferred_wall})


class GreenaiJobTrigger(BaseTrigger):
    """Polls ``GET /jobs/{id}`` every ``poll_interval`` seconds until the job is final, then
    fires ``{"status": "final", "job": summary}`` (or ``{"status": "error", "message"}``).
    A user who clears, marks or kills the deferred task cancels the job (``on_kill``)."""

    def __init__(self, conn_id: str, job_id: str, poll_interval: float = 5.0) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.job_id = job_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"conn_id": self.conn_id, "job_id": self.job_id, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        endpoint = await self._endpoint()
        failures = 0
        async with httpx.AsyncClient(base_url=endpoint.url, timeout=TIMEOUT) as client:
            while True:
                try:
                    job = await read_job(client, endpoint, self.job_id)
                except DaemonError as exc:
                    failures += 1
                    if failures >= MAX_FAILED_READS:
                        yield TriggerEvent({"status": "error", "message": str(exc)})
                        return
                    self.log.warning("greenai job %s: %s; reading again", self.job_id, exc)
                else:
                    failures = 0
                    if job["state"] in FINAL_STATES:
                        yield TriggerEvent({"status": "final", "job": job_summary(job)})
                        return
                await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """The user acted on the deferred task (clear, mark failed or succeeded): the job
        must not run on behind Airflow's back."""
        endpoint = await self._endpoint()
        job = await cancel_job_async(endpoint, self.job_id)
        self.log.info("greenai job %s cancelled on kill: %s", self.job_id, job.get("state"))

    async def _endpoint(self) -> Endpoint:
        conn = await BaseHook.aget_connection(self.conn_id)
        return Endpoint.of_connection(conn.host, conn.port, conn.schema, conn.password)
