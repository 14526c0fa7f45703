"""Checks of the manifests against greenai itself: its CLI parses each container's arguments,
its settings load from the environment and secret files the pod gets, and the CronJob's
deadlines leave room for the deferral, the job and the SIGTERM grace.

Nothing here runs greenai: the CLI only parses (``make_context``), settings only load.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import typer
import typer.main

from greenai.cli import app
from greenai.core.settings import SECRET_ENV_NAMES, Settings, load_settings
from greenai.core.time import parse_duration
from tests.deploy.crossref import Problems
from tests.deploy.kustomize import Resource
from tests.deploy.manifests import containers, pods

GREENAI_IMAGE = re.compile(r"(.*/)?greenai(:[\w.-]+)?(@sha256:[0-9a-f]+)?")
EVIDENCE_MARGIN_S = 30  # after the job's grace: greenai writes the evidence row
FIELD_VALUES = {"metadata.name": "greenai-daemon-7d9f8-abcde", "metadata.namespace": "greenai"}


def parse_args(args: list[str]) -> tuple[str, dict[str, Any]]:
    """The greenai command ``args`` name and the parameters its CLI parses from them;
    ``typer.TyperException`` (a usage error) when they do not parse."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.main.TyperGroup)
    name, command, rest = group.resolve_command(typer.Context(group, info_name="greenai"), args)
    assert name is not None and command is not None
    return name, command.make_context(name, rest).params


Found = tuple[Resource, dict[str, Any], dict[str, Any]]


def greenai_containers(objects: list[Resource]) -> list[Found]:
    """(workload, pod spec, container) for every container running the greenai image."""
    return [
        (workload, pod, container)
        for workload, pod in pods(objects)
        for container in containers(pod)
        if GREENAI_IMAGE.fullmatch(container["image"])
    ]


def cli_problems(objects: list[Resource]) -> Problems:
    """Each greenai container keeps the image's entrypoint and its args parse with the CLI."""
    problems: Problems = []
    for workload, _, container in greenai_containers(objects):
        where = f"{workload['metadata']['name']} container {container['name']}"
        if "command" in container:
            problems.append(f"{where}: `command` replaces the image's greenai entrypoint")
        try:
            parse_args(list(container.get("args", [])))
        except typer.TyperException as exc:
            problems.append(f"{where}: greenai does not take its args: {exc}")
    return problems


def _data(objects: list[Resource], kind: str, name: str) -> dict[str, str]:
    for obj in objects:
        if (obj["kind"], obj["metadata"]["name"]) == (kind, name):
            return {**obj.get("data", {}), **obj.get("stringData", {})}
    return {}


def environment(objects: list[Resource], container: dict[str, Any]) -> dict[str, str]:
    """The environment the container starts with: envFrom, then env (``$(VAR)`` expanded,
    field references given sample values, secrets their committed values)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(_data(objects, "ConfigMap", source["configMapRef"]["name"]))
        if "secretRef" in source:
            env.update(_data(objects, "Secret", source["secretRef"]["name"]))
    for var in container.get("env", []):
        ref = var.get("valueFrom", {})
        if "value" in var:
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), var["value"])
        elif "fieldRef" in ref:
            value = FIELD_VALUES[ref["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in ref:
            value = _data(objects, "Secret", ref["secretKeyRef"]["name"])[
                ref["secretKeyRef"]["key"]
            ]
        else:
            value = _data(objects, "ConfigMap", ref["configMapKeyRef"]["name"])[
                ref["configMapKeyRef"]["key"]
            ]
        env[var["name"]] = value
    return env


def secret_files(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Path in the container -> (Secret, key) of every file its Secret volumes mount."""
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    files: dict[str, tuple[str, str]] = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes.get(mount["name"], {}).get("secret")
        if secret is None:
            continue
        for item in secret.get("items", []):
            path = PurePosixPath(mount["mountPath"]) / item["path"]
            files[str(path)] = (secret["secretName"], item["key"])
    return files


def known_variables() -> set[str]:
    """Every variable greenai reads: its settings, the secret ones, the executors' own."""
    from greenai.executors.kubernetes_config import PREFIX, KubernetesSettings

    names = {f"GREENAI_{field.upper()}" for field in Settings.model_fields}
    names |= {f"{PREFIX}{field.upper()}" for field in KubernetesSettings.model_fields}
    return names | set(SECRET_ENV_NAMES) | {"GREENAI_CONFIG"}


def unknown_variables(objects: list[Resource]) -> Problems:
    """greenai ignores a variable it does not know, so a misspelt one would do nothing."""
    known = known_variables()
    return [
        f"{workload['metadata']['name']} container {container['name']}: greenai reads no {name}"
        for workload, _, container in greenai_containers(objects)
        for name in sorted(environment(objects, container))
        if (name.startswith(("GREENAI_", "WATTTIME_")) and name not in known)
    ]


def unmounted_secret_files(objects: list[Resource]) -> Problems:
    """Each ``*_FILE`` setting names a file a mounted Secret provides."""
    problems: Problems = []
    for workload, pod, container in greenai_containers(objects):
        files = secret_files(pod, container)
        for name, value in sorted(environment(objects, container).items()):
            if name.endswith("_FILE") and name != "GREENAI_CONFIG" and value not in files:
                problems.append(
                    f"{workload['metadata']['name']}: {name}={value} is no mounted Secret file"
                )
    return problems


def load_container_settings(
    objects: list[Resource], pod: dict[str, Any], container: dict[str, Any], folder: Path
) -> Settings:
    """The settings greenai would load in the container, its secret files written under
    ``folder`` with their committed values, or ``filled`` where those are empty."""
    env = environment(objects, container)
    files = secret_files(pod, container)
    for name, value in list(env.items()):
        if value in files:
            secret, key = files[value]
            local = folder / secret / key
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(_data(objects, "Secret", secret)[key] or "filled", encoding="utf-8")
            env[name] = str(local)
    return load_settings(env=env, config_file=None)


def _seconds(value: object) -> float:
    return parse_duration(str(value)).total_seconds()


def deadline_problems(objects: list[Resource], folder: Path) -> Problems:
    """A CronJob running ``greenai run``: one run at a time, a bounded job, and deadlines that
    leave room for the deferral, the job and greenai's SIGTERM grace plus the evidence row."""
    problems: Problems = []
    for workload, pod, container in greenai_containers(objects):
        command, params = parse_args(list(container.get("args", [])))
        settings = load_container_settings(objects, pod, container, folder)
        name = workload["metadata"]["name"]
        grace = settings.grace_seconds + EVIDENCE_MARGIN_S
        if pod.get("terminationGracePeriodSeconds", 30) < grace:
            problems.append(f"{name}: terminationGracePeriodSeconds < {grace:g} s")
        if workload["kind"] != "CronJob" or command != "run":
            continue
        spec = workload["spec"]
        if spec.get("concurrencyPolicy") != "Forbid" or "startingDeadlineSeconds" not in spec:
            problems.append(f"{name}: needs concurrencyPolicy Forbid and startingDeadlineSeconds")
        if params["max_runtime"] is None:
            problems.append(f"{name}: greenai run without --max-runtime has no bounded job")
            continue
        defer = params["defer_seconds"] or settings.defer_seconds
        needed = defer + _seconds(params["max_runtime"]) + settings.grace_seconds
        active = spec["jobTemplate"]["spec"].get("activeDeadlineSeconds", 0)
        if active < needed:
            problems.append(
                f"{name}: activeDeadlineSeconds {active} < {needed:g} s (deferral + max runtime"
                " + grace)"
            )
    return problems


def writable_paths_problems(objects: list[Resource], folder: Path) -> Problems:
    """With a read-only root filesystem, what greenai writes (its home, evidence, decisions,
    temporary files) lies on a writable volume."""
    problems: Problems = []
    for workload, pod, container in greenai_containers(objects):
        if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
            continue
        settings = load_container_settings(objects, pod, container, folder)
        writable = [
            PurePosixPath(m["mountPath"])
            for m in container.get("volumeMounts", [])
            if not m.get("readOnly")
        ]
        for path in (settings.home, settings.evidence_path, settings.decision_log_path, "/tmp"):
            posix = PurePosixPath(str(path))
            if not any(posix == mount or mount in posix.parents for mount in writable):
                problems.append(f"{workload['metadata']['name']}: {path} is on no writable volume")
    return problems
