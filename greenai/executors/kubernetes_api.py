"""The few Kubernetes API calls the executor makes, on raw JSON, with one error type.

Every call goes through the official client (``BatchV1Api``, ``CoreV1Api``, ``watch.Watch``)
with ``_preload_content=False`` so the executor reads the API's JSON as it is, and with a
timeout. The client's exceptions are translated here, once, into ``ApiFailure``: its message
names the call (verb and resource, which a 403 says the service account lacks) and the API's
own message, never the request (a Job's env may hold a job's credentials) or its headers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


class ApiFailure(Exception):
    """An API call that failed: ``status`` is the HTTP status (0: no answer at all)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth trying again later: no answer, or the server busy or failing."""
        return self.status == 0 or self.status in TRANSIENT


def _api_message(body: object) -> str:
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        return ""
    return str(data.get("message") or "") if isinstance(data, dict) else ""


def _failure(exc: Exception, verb: str, resource: str, namespace: str) -> ApiFailure:
    from kubernetes.client.exceptions import ApiException

    if not isinstance(exc, ApiException):  # urllib3: refused, timed out, reset
        return ApiFailure(
            0, f"{verb} {resource}: no answer from the API server ({type(exc).__name__})"
        )
    status = int(exc.status or 0)
    message = _api_message(exc.body) or str(exc.reason or "")
    if status == 403:
        return ApiFailure(
            status,
            f"{verb} {resource} forbidden in namespace {namespace}: the service account needs "
            f"the RBAC permission '{verb}' on '{resource}' ({message})",
        )
    return ApiFailure(
        status, f"{verb} {resource} in namespace {namespace}: HTTP {status}: {message}"
    )


def _json(response: Any) -> dict[str, Any]:
    try:
        data = json.loads(response.data)
    finally:
        response.release_conn()
    if not isinstance(data, dict):
        raise ApiFailure(0, f"the API server answered with a {type(data).__name__}, not an object")
    return data


class ApiCalls:
    """``create``/``get``/``list``/``watch``/``delete`` Jobs and ``list`` pods in one namespace."""

    def __init__(self, client: Any, namespace: str, timeout_s: float) -> None:
        from kubernetes import client as k8s

        self.client = client
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.batch = k8s.BatchV1Api(client)
        self.core = k8s.CoreV1Api(client)

    def _do(self, verb: str, resource: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs.setdefault("_request_timeout", self.timeout_s)
        try:
            return _json(call(*args, _preload_content=False, **kwargs))
        except (ApiException, HTTPError) as exc:
            raise _failure(exc, verb, resource, self.namespace) from exc

    def create_job(self, body: Mapping[str, Any]) -> dict[str, Any]:
        batch = self.batch
        return self._do("create", "jobs", batch.create_namespaced_job, self.namespace, body)

    def read_job(self, name: str) -> dict[str, Any] | None:
        """The Job, or ``None`` when there is none of that name (404)."""
        try:
            return self._do("get", "jobs", self.batch.read_namespaced_job, name, self.namespace)
        except ApiFailure as exc:
            if exc.status == 404:
                return None
            raise

    def list_jobs(self, selector: str) -> list[dict[str, Any]]:
        found = self._do(
            "list", "jobs", self.batch.list_namespaced_job, self.namespace, label_selector=selector
        )
        return list(found.get("items") or [])

    def list_version(self, name: str) -> str:
        """The ``resourceVersion`` to watch the Job ``name`` from (a fresh list)."""
        found = self._do(
            "list",
            "jobs",
            self.batch.list_namespaced_job,
            self.namespace,
            field_selector=f"metadata.name={name}",
        )
        return str((found.get("metadata") or {}).get("resourceVersion") or "")

    def list_pods(self, selector: str) -> list[dict[str, Any]]:
        found = self._do(
            "list", "pods", self.core.list_namespaced_pod, self.namespace, label_selector=selector
        )
        return list(found.get("items") or [])

    def delete_job(self, name: str, grace_s: int | None) -> None:
        """Delete the Job and, first, its pods; a Job already gone is no error."""
        body: dict[str, Any] = {"propagationPolicy": "Foreground"}
        if grace_s is not None:
            body["gracePeriodSeconds"] = grace_s
        try:
            self._do("delete", "jobs", self.batch.delete_namespaced_job, name, self.namespace,
                     body=body)  # fmt: skip
        except ApiFailure as exc:
            if exc.status != 404:
                raise

    def watch_until_ended(self, name: str, version: str, timeout_s: float) -> str:
        """Follow the Job's events from ``version`` until it ends, is deleted, or
        ``timeout_s`` passes; the last version seen. ``ApiFailure`` 410 when ``version`` is
        too old to watch from (list again)."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        from greenai.executors.job_status import ended

        stream = watch.Watch()
        seconds = max(1, math.ceil(timeout_s))
        try:
            for event in stream.stream(
                self.batch.list_namespaced_job,
                self.namespace,
                field_selector=f"metadata.name={name}",
                resource_version=version,
                timeout_seconds=seconds,
                _request_timeout=seconds + self.timeout_s,
            ):
                job = event.get("raw_object") or {}
                version = str((job.get("metadata") or {}).get("resourceVersion") or version)
                if event.get("type") == "DELETED" or ended(job) is not None:
                    stream.stop()
                    break
        except (ApiException, HTTPError) as exc:
            raise _failure(exc, "watch", "jobs", self.namespace) from exc
        return version

    def close(self) -> None:
        self.client.close()
