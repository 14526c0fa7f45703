"""A small renderer for the subset of kustomize that deploy/k8s uses, so the tests render the
overlays with no kustomize binary (`kubectl kustomize` gives users the same objects).

Supported: ``resources`` (YAML files, or folders holding a kustomization), ``patches`` given by
``path`` (strategic merge patches naming their target by kind and name) and ``namespace``.
Any other field is an error rather than silently ignored, so the manifests cannot outgrow it.
Strategic merge follows Kubernetes' merge keys for the lists these manifests patch
(containers and env by ``name``, volumeMounts by ``mountPath``...); other lists are replaced.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # (no stubs; only safe_load_all is used)

Resource = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "patches", "namespace"}
# Kubernetes' patchMergeKey for the lists a patch may merge into rather than replace.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}


class KustomizeError(ValueError):
    """A kustomization this renderer cannot render exactly as kustomize would."""


def render(folder: Path) -> list[Resource]:
    """The objects ``kubectl kustomize folder`` prints, in the order of their resources."""
    spec = _kustomization(folder)
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{folder}: unsupported kustomization fields {sorted(unknown)}")
    objects: list[Resource] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        objects += render(path) if path.is_dir() else load_yaml(path)
    _refuse_duplicates(objects, folder)
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{folder}: only patches given by path are supported: {patch}")
        for body in load_yaml(folder / patch["path"]):
            target = _target(objects, body, folder)
            merged = strategic_merge(copy.deepcopy(target), body)
            target.clear()
            target.update(merged)
    if "namespace" in spec:
        for obj in objects:
            set_namespace(obj, spec["namespace"])
    return objects


def load_yaml(path: Path) -> list[Resource]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def _kustomization(folder: Path) -> dict[str, Any]:
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    [spec] = load_yaml(path)
    return spec


def key(obj: Resource) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _refuse_duplicates(objects: list[Resource], folder: Path) -> None:
    seen = [key(obj) for obj in objects]
    twice = sorted({k for k in seen if seen.count(k) > 1})
    if twice:
        raise KustomizeError(f"{folder}: resources defined twice: {twice}")


def _target(objects: list[Resource], patch: Resource, folder: Path) -> Resource:
    found = [obj for obj in objects if key(obj) == key(patch)]
    if not found:
        raise KustomizeError(f"{folder}: the patch's target {key(patch)} is no resource")
    return found[0]


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """``patch`` merged into ``base``: maps recursively (``null`` deletes a key), lists with a
    merge key item by item (``$patch: delete`` removes one), other values replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            if value is None:
                merged.pop(name, None)
            elif name in merged:
                merged[name] = strategic_merge(merged[name], value, name)
            else:
                merged[name] = value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        return _merge_list(base, patch, MERGE_KEYS[field])
    return patch


def _merge_list(base: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    """Items the base lacks come first, in the patch's order, as kustomize puts them."""
    merged, added = list(base), []
    for item in patch:
        index = next((i for i, old in enumerate(merged) if old[merge_key] == item[merge_key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            added.append(item)
        else:
            merged[index] = strategic_merge(merged[index], item)
    return added + merged


def set_namespace(obj: Resource, namespace: str) -> None:
    """What kustomize's ``namespace`` does: every namespaced object moves there, and so do the
    ServiceAccounts a RoleBinding names."""
    if obj["kind"] in CLUSTER_SCOPED:
        return
    obj["metadata"]["namespace"] = namespace
    if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
        for subject in obj.get("subjects", []):
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace
