"""The rendered overlays of deploy/k8s and the pod specs inside them."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from tests.deploy.kustomize import Resource, render

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("cronjob", "daemon-sqlite", "daemon-postgres")
KUBERNETES_VERSION = "1.31.0"  # the schemas the manifests are validated against


@cache
def _rendered(folder: Path) -> tuple[Resource, ...]:
    return tuple(render(folder))


def rendered(overlay: str) -> list[Resource]:
    """A fresh copy of the overlay's objects (tests may break them)."""
    import copy

    return copy.deepcopy(list(_rendered(K8S / "overlays" / overlay)))


def one(objects: list[Resource], kind: str, name: str | None = None) -> Resource:
    """The one object of ``kind`` (named ``name``)."""
    [found] = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return found


def pod_template(obj: Resource) -> dict[str, Any] | None:
    """The pod template of a workload (Deployment, Job, CronJob...), else ``None``."""
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template: dict[str, Any] | None = spec.get("template")
    return template


def pods(objects: list[Resource]) -> Iterator[tuple[Resource, dict[str, Any]]]:
    """Each workload with its pod spec."""
    for obj in objects:
        template = pod_template(obj)
        if template is not None:
            yield obj, template["spec"]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]
