"""The ``batch/v1`` Job a greenai job attempt becomes, as a plain JSON-able dict (pure).

Kubernetes names and label values have rules that greenai job ids need not follow, so both
are sanitised: lower-case ``[a-z0-9-]`` for the Job name (a DNS label: it also becomes the
pods' ``job-name`` label, so at most 63 characters), ``[A-Za-z0-9._-]`` for label values. Where
sanitising changed or shortened an id, a short hash of the raw id keeps distinct ids distinct;
the raw id is always in the ``greenai.dev/job-id`` annotation.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from greenai.executors.base import Launch

JOB_ID_LABEL = "greenai.dev/job-id"
ATTEMPT_LABEL = "greenai.dev/attempt"
PIECE_LABEL = "greenai.dev/piece"  # an interruptible job's piece; absent when it runs whole
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "greenai"
JOB_ID_ANNOTATION = "greenai.dev/job-id"
GPU_RESOURCE = "nvidia.com/gpu"
CONTAINER = "job"
MAX_NAME = 63
MAX_LABEL = 63
_HASH_CHARS = 8


@dataclass(frozen=True, slots=True)
class PodSpecOptions:
    """What every Job's pod gets from the executor's settings."""

    image: str
    ttl_seconds: int
    service_account: str | None = None
    image_pull_policy: str | None = None


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()[:_HASH_CHARS]


def label_value(raw: str) -> str:
    """``raw`` as a valid label value (at most 63 of ``[A-Za-z0-9._-]``, alphanumeric at both
    ends); a hash of ``raw`` is appended when anything had to change."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-._")
    if clean == raw and len(raw) <= MAX_LABEL:
        return raw
    head = clean[: MAX_LABEL - _HASH_CHARS - 1].rstrip("-._")
    return f"{head}-{_digest(raw)}" if head else _digest(raw)


def job_name(job_id: str, attempt: int, piece: int = 0) -> str:
    """The Job's name: ``greenai-<id>-<attempt>`` (``-p<piece>`` for a piece), a DNS label."""
    suffix = f"-{attempt}" + (f"-p{piece}" if piece else "")
    clean = re.sub(r"[^a-z0-9-]+", "-", job_id.lower()).strip("-")
    room = MAX_NAME - len("greenai-") - len(suffix)
    if clean != job_id or len(clean) > room:
        clean = clean[: room - _HASH_CHARS - 1].rstrip("-")
        clean = f"{clean}-{_digest(job_id)}" if clean else _digest(job_id)
    return f"greenai-{clean}{suffix}"


def job_labels(job_id: str, attempt: int, piece: int = 0) -> dict[str, str]:
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY,
        JOB_ID_LABEL: label_value(job_id),
        ATTEMPT_LABEL: str(attempt),
    }
    if piece:
        labels[PIECE_LABEL] = str(piece)
    return labels


def label_selector(job_id: str, attempt: int, piece: int = 0) -> str:
    """``k=v,...`` selecting the Job (and its pods) of one attempt (or piece)."""
    labels = job_labels(job_id, attempt, piece)
    return ",".join(f"{key}={value}" for key, value in labels.items())


def deadline_seconds(launch: Launch, now: datetime) -> int | None:
    """``activeDeadlineSeconds``: the launch's max runtime or the time to its ``stop_at``,
    whichever is sooner, rounded up (at least 1); ``None`` when it has neither."""
    limits = []
    if launch.max_runtime is not None:
        limits.append(launch.max_runtime.total_seconds())
    if launch.stop_at is not None:
        limits.append((launch.stop_at - now).total_seconds())
    if not limits:
        return None
    return max(1, math.ceil(min(limits)))


def container_env(env: Mapping[str, str] | None, dropped: frozenset[str]) -> list[dict[str, str]]:
    """The job's own env as the container's ``env``, sorted, less the names in ``dropped``."""
    return [{"name": k, "value": v} for k, v in sorted((env or {}).items()) if k not in dropped]


def build_job(
    launch: Launch,
    options: PodSpecOptions,
    now: datetime,
    dropped_env: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The Job body for ``launch``: argv as the container's ``command``, GPU limits, labels
    on the Job and its pods, one try (``backoffLimit: 0``, ``restartPolicy: Never``), deleted
    ``ttl_seconds`` after it ends, stopped at its limits (``activeDeadlineSeconds``) with the
    launch's grace between SIGTERM and SIGKILL."""
    labels = job_labels(launch.job_id, launch.attempt, launch.piece)
    annotations = {JOB_ID_ANNOTATION: launch.job_id}
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": options.image,
        "command": list(launch.command),
        "env": [
            *container_env(launch.env, dropped_env),
            {"name": "GREENAI_JOB_ID", "value": launch.job_id},
            {"name": "GREENAI_ATTEMPT", "value": str(launch.attempt)},
        ],
    }
    if launch.cwd:
        container["workingDir"] = launch.cwd
    if launch.gpus:
        container["resources"] = {"limits": {GPU_RESOURCE: str(launch.gpus)}}
    if options.image_pull_policy:
        container["imagePullPolicy"] = options.image_pull_policy
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": max(0, math.ceil(launch.grace_s)),
        "containers": [container],
    }
    if options.service_account:
        pod["serviceAccountName"] = options.service_account
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": options.ttl_seconds,
        "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod},
    }
    if (deadline := deadline_seconds(launch, now)) is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(launch.job_id, launch.attempt, launch.piece),
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def is_ours(job: Mapping[str, Any], job_id: str, attempt: int, piece: int = 0) -> bool:
    """Whether a Job found in the cluster is this greenai job's attempt or piece (labels and
    the raw id in the annotation)."""
    metadata = job.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    wanted = job_labels(job_id, attempt, piece)
    return (
        all(labels.get(k) == v for k, v in wanted.items())
        and labels.get(PIECE_LABEL) == wanted.get(PIECE_LABEL)
        and annotations.get(JOB_ID_ANNOTATION) == job_id
    )
