"""Hand a command to a greenai daemon, wait for it deferred, and end as the job ends.

The daemon plans the job (its policy, its forecasts, its GPU slots) and runs it; the task
waits in the triggerer (``GreenaiJobTrigger``), so no worker slot is held meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import BaseHook, BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from greenai.core.time import format_time
from greenai.integrations.airflow.client import (
    DaemonError,
    Endpoint,
    cancel_job,
    job_summary,
    submit_job,
)
from greenai.integrations.airflow.triggers import GreenaiJobTrigger
from greenai.integrations.airflow.window import as_deadline, as_seconds

JOB_ID_KEY = "greenai_job_id"  # XCom: the daemon's id of the job
JOB_KEY = "greenai_job"  # XCom: the final job (state, times, exit code, decisions)


class GreenaiSubmitOperator(BaseOperator):
    """Submits ``command`` (argv) to the greenai daemon of Connection ``greenai_conn_id``
    (conn type ``http``: host, port, schema; password = the daemon's API token) with the
    job fields of ``POST /jobs`` (``duration``, ``deadline`` or ``max_delay``, ``gpus``,
    ``policy``, ``threshold``, ``project``...; ``job_fields`` for the others), then defers
    until the job is final. Succeeds when it succeeded; fails otherwise. Killing or clearing
    the task cancels the job. A retry of the same try gets the same job back (an
    ``Idempotency-Key`` of the task instance)."""

    template_fields: Sequence[str] = ("command", "duration", "deadline", "max_delay", "name")

    def __init__(
        self,
        *,
        command: Sequence[str],
        duration: str | float,
        deadline: datetime | str | None = None,
        max_delay: timedelta | float | str | None = None,
        name: str | None = None,
        gpus: int = 1,
        policy: str | None = None,
        threshold: float | None = None,
        project: str | None = None,
        job_fields: Mapping[str, Any] | None = None,
        greenai_conn_id: str = "greenai_default",
        poll_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.command = list(command)
        self.duration = duration
        self.deadline = deadline
        self.max_delay = max_delay
        self.name = name
        self.gpus = gpus
        self.policy = policy
        self.threshold = threshold
        self.project = project
        self.job_fields = dict(job_fields or {})
        self.greenai_conn_id = greenai_conn_id
        self.poll_interval = poll_interval
        self._job_id: str | None = None

    def execute(self, context: Context) -> Any:
        ti = context["ti"]
        key = f"airflow:{ti.dag_id}:{ti.run_id}:{ti.task_id}:{ti.map_index}:{ti.try_number}"
        try:
            job = submit_job(self._endpoint(), self.job_body(), key)
        except DaemonError as exc:
            raise AirflowException(str(exc)) from exc
        self._job_id = job["id"]
        ti.xcom_push(key=JOB_ID_KEY, value=job["id"])
        self.log.info(
            "greenai job %s (%s) submitted: %s, planned start %s",
            job["id"],
            job.get("name"),
            job.get("state"),
            job.get("planned_start"),
        )
        self.defer(
            trigger=GreenaiJobTrigger(self.greenai_conn_id, job["id"], self.poll_interval),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        if event.get("status") != "final":
            raise AirflowException(f"greenai: {event.get('message')}")
        job = event["job"]
        context["ti"].xcom_push(key=JOB_KEY, value=job)
        self.log.info(
            "greenai job %s %s (exit code %s), ran %s .. %s",
            job["id"],
            job["state"],
            job["exit_code"],
            job["started_at"],
            job["finished_at"],
        )
        if job["state"] != "succeeded":
            raise AirflowException(
                f"greenai job {job['id']} {job['state']} (exit code {job['exit_code']})"
            )
        return job

    def on_kill(self) -> None:
        """Killed before it deferred (the trigger's ``on_kill`` covers the deferred wait)."""
        if self._job_id is None:
            return
        try:
            job = cancel_job(self._endpoint(), self._job_id)
        except DaemonError as exc:
            self.log.warning("greenai job %s not cancelled: %s", self._job_id, exc)
            return
        self.log.info("greenai job %s cancelled on kill: %s", self._job_id, job_summary(job))

    def job_body(self) -> dict[str, Any]:
        """The ``POST /jobs`` body (``docs/formats.md`` §6)."""
        deadline = as_deadline(self.deadline)
        body: dict[str, Any] = {
            "command": [str(item) for item in self.command],
            "duration": self.duration,
            "gpus": self.gpus,
            "name": self.name or self.task_id,
            "deadline": format_time(deadline),
            "max_delay": as_seconds(self.max_delay),
            "policy": self.policy,
            "threshold": self.threshold,
            "project": self.project,
            **self.job_fields,
        }
        return {key: value for key, value in body.items() if value is not None}

    def _endpoint(self) -> Endpoint:
        conn = BaseHook.get_connection(self.greenai_conn_id)
        return Endpoint.of_connection(conn.host, conn.port, conn.schema, conn.password)
