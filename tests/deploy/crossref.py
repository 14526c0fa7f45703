"""Cross-reference checks over rendered manifests: what one object names, another must hold.

Each check returns the problems it found as sentences (empty: none), so a test can both assert
a clean overlay and show that a deliberately broken one is caught.
"""

from __future__ import annotations

from typing import Any

from tests.deploy.kustomize import Resource
from tests.deploy.manifests import containers, pod_template, pods

Problems = list[str]


def _data_keys(objects: list[Resource], kind: str) -> dict[str, set[str]]:
    return {
        obj["metadata"]["name"]: {*obj.get("data", {}), *obj.get("stringData", {})}
        for obj in objects
        if obj["kind"] == kind
    }


def _key_ref(found: dict[str, set[str]], kind: str, ref: dict[str, Any], where: str) -> Problems:
    if ref.get("optional"):
        return []
    name, key = ref["name"], ref.get("key")
    if name not in found:
        return [f"{where}: no {kind} {name!r}"]
    if key is not None and key not in found[name]:
        return [f"{where}: {kind} {name!r} has no key {key!r}"]
    return []


def missing_keys(objects: list[Resource]) -> Problems:
    """Every ConfigMap and Secret (and key) that env, envFrom or a volume names exists."""
    maps = {"ConfigMap": _data_keys(objects, "ConfigMap"), "Secret": _data_keys(objects, "Secret")}
    problems: Problems = []
    for workload, pod in pods(objects):
        owner = f"{workload['kind']}/{workload['metadata']['name']}"
        for container in containers(pod):
            where = f"{owner} container {container['name']}"
            for source in container.get("envFrom", []):
                for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if field in source:
                        problems += _key_ref(maps[kind], kind, source[field], where)
            for var in container.get("env", []):
                value_from = var.get("valueFrom", {})
                for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    if field in value_from:
                        problems += _key_ref(maps[kind], kind, value_from[field], where)
        for volume in pod.get("volumes", []):
            where = f"{owner} volume {volume['name']}"
            for field, kind, name_field in (
                ("configMap", "ConfigMap", "name"),
                ("secret", "Secret", "secretName"),
            ):
                if field not in volume:
                    continue
                source = volume[field]
                ref = {"name": source[name_field], "optional": source.get("optional")}
                problems += _key_ref(maps[kind], kind, ref, where)
                for item in source.get("items", []):
                    problems += _key_ref(maps[kind], kind, {**ref, "key": item["key"]}, where)
    return problems


def missing_claims(objects: list[Resource]) -> Problems:
    """Every PersistentVolumeClaim a pod mounts is among the manifests."""
    claims = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    problems: Problems = []
    for workload, pod in pods(objects):
        for volume in pod.get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim is not None and claim not in claims:
                problems.append(
                    f"{workload['metadata']['name']} volume {volume['name']}: no PVC {claim!r}"
                )
    return problems


def unmatched_mounts(objects: list[Resource]) -> Problems:
    """Every volumeMount names a volume of its pod, and every volume is mounted somewhere."""
    problems: Problems = []
    for workload, pod in pods(objects):
        volumes = {volume["name"] for volume in pod.get("volumes", [])}
        mounted = set()
        for container in containers(pod):
            for mount in container.get("volumeMounts", []):
                mounted.add(mount["name"])
                if mount["name"] not in volumes:
                    problems.append(
                        f"{workload['metadata']['name']} container {container['name']}: "
                        f"mount {mount['mountPath']} names no volume {mount['name']!r}"
                    )
        problems += [
            f"{workload['metadata']['name']}: volume {name!r} is never mounted"
            for name in sorted(volumes - mounted)
        ]
    return problems


def _port_names(container: dict[str, Any]) -> set[str | int]:
    ports = container.get("ports", [])
    return {p["containerPort"] for p in ports} | {p["name"] for p in ports if "name" in p}


def service_mismatches(objects: list[Resource]) -> Problems:
    """Each Service selects a pod template whose containers serve its every targetPort."""
    problems: Problems = []
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = service["spec"].get("selector", {})
        name = service["metadata"]["name"]
        served = [
            _port_names(container)
            for workload, pod in pods(objects)
            if selector.items() <= _template_labels(workload).items()
            for container in containers(pod)
        ]
        if not served:
            problems.append(f"Service {name}: its selector {selector} matches no pod template")
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if served and not any(target in names for names in served):
                problems.append(f"Service {name}: no container of its pods serves port {target!r}")
    return problems


def _template_labels(workload: Resource) -> dict[str, str]:
    template = pod_template(workload) or {}
    labels: dict[str, str] = template.get("metadata", {}).get("labels", {})
    return labels


def probe_mismatches(objects: list[Resource]) -> Problems:
    """Probes reach a port the container declares."""
    problems: Problems = []
    for workload, pod in pods(objects):
        for container in containers(pod):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                port = container.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None and port not in _port_names(container):
                    problems.append(
                        f"{workload['metadata']['name']} {probe}: the container has no port "
                        f"{port!r}"
                    )
    return problems


def identity_mismatches(objects: list[Resource]) -> Problems:
    """Pods run as ServiceAccounts that exist; RoleBindings bind existing Roles and accounts."""
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    problems: Problems = []
    for workload, pod in pods(objects):
        account = pod.get("serviceAccountName")
        if account and ("ServiceAccount", account) not in names:
            problems.append(f"{workload['metadata']['name']}: no ServiceAccount {account!r}")
    for binding in (o for o in objects if o["kind"] == "RoleBinding"):
        ref = binding["roleRef"]
        if (ref["kind"], ref["name"]) not in names:
            problems.append(f"RoleBinding {binding['metadata']['name']}: no {ref['kind']}")
        for subject in binding.get("subjects", []):
            if (subject["kind"], subject["name"]) not in names:
                problems.append(
                    f"RoleBinding {binding['metadata']['name']}: no {subject['kind']} "
                    f"{subject['name']!r}"
                )
    return problems


ALL_CHECKS = (
    missing_keys,
    missing_claims,
    unmatched_mounts,
    service_mismatches,
    probe_mismatches,
    identity_mismatches,
)
