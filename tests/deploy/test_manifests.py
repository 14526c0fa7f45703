"""Every rendered overlay is valid Kubernetes (the JSON schemas of a pinned version, bundled
by kubernetes-validate: offline) and holds together: what one object names, another holds.
Each cross-reference check is shown to catch a manifest broken on purpose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy import crossref
from tests.deploy.kustomize import Resource, render
from tests.deploy.manifests import K8S, KUBERNETES_VERSION, OVERLAYS, one, rendered


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_against_the_pinned_schemas(overlay: str) -> None:
    for obj in rendered(overlay):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_base_renders_and_is_valid_on_its_own() -> None:
    for obj in render(K8S / "base"):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_schema_validation_rejects_a_broken_manifest() -> None:
    cronjob = one(rendered("cronjob"), "CronJob")
    cronjob["spec"]["startingDeadlineSeconds"] = "10m"
    with pytest.raises(kubernetes_validate.ValidationError):  # an integer
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSION, strict=True)
    cronjob = one(rendered("cronjob"), "CronJob")
    del _pod([cronjob], "CronJob")["containers"][0]["name"]
    with pytest.raises(kubernetes_validate.ValidationError):  # required
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSION, strict=True)
    deployment = one(rendered("daemon-sqlite"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):  # strict: no unknown fields
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("check", crossref.ALL_CHECKS, ids=lambda check: check.__name__)
def test_cross_references_hold(overlay: str, check: Callable[[list[Resource]], list[str]]) -> None:
    assert check(rendered(overlay)) == []


def _pod(objects: list[Resource], kind: str = "Deployment") -> dict[str, Any]:
    workload = one(objects, kind)
    spec = workload["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else workload["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def _drop_secret_key(objects: list[Resource]) -> None:
    del one(objects, "Secret", "greenai-api-token")["stringData"]["token"]


def _rename_config_map(objects: list[Resource]) -> None:
    _pod(objects)["containers"][0]["envFrom"][1]["configMapRef"]["name"] = "greenai-confg"


def _wrong_secret_key_ref(objects: list[Resource]) -> None:
    env = _pod(objects)["containers"][0]["env"]
    next(v for v in env if v["name"] == "GREENAI_DATABASE_URL")["valueFrom"]["secretKeyRef"][
        "key"
    ] = "uri"


def _rename_claim(objects: list[Resource]) -> None:
    state = next(v for v in _pod(objects)["volumes"] if v["name"] == "state")
    state["persistentVolumeClaim"]["claimName"] = "greenai-state"


def _mount_without_volume(objects: list[Resource]) -> None:
    _pod(objects)["containers"][0]["volumeMounts"].append({"name": "home", "mountPath": "/home"})


def _unmounted_volume(objects: list[Resource]) -> None:
    _pod(objects)["volumes"].append({"name": "spare", "emptyDir": {}})


def _service_target_port(objects: list[Resource]) -> None:
    one(objects, "Service")["spec"]["ports"][0]["targetPort"] = "api"


def _service_selector(objects: list[Resource]) -> None:
    one(objects, "Service")["spec"]["selector"]["app.kubernetes.io/component"] = "api"


def _probe_port(objects: list[Resource]) -> None:
    _pod(objects)["containers"][0]["livenessProbe"]["httpGet"]["port"] = 8080


def _service_account(objects: list[Resource]) -> None:
    _pod(objects)["serviceAccountName"] = "greenai"


def _binding_subject(objects: list[Resource]) -> None:
    one(objects, "RoleBinding")["subjects"][0]["name"] = "default"


BREAKAGES = [
    (_drop_secret_key, crossref.missing_keys, "has no key 'token'"),
    (_rename_config_map, crossref.missing_keys, "no ConfigMap 'greenai-confg'"),
    (_wrong_secret_key_ref, crossref.missing_keys, "has no key 'uri'"),
    (_rename_claim, crossref.missing_claims, "no PVC 'greenai-state'"),
    (_mount_without_volume, crossref.unmatched_mounts, "names no volume 'home'"),
    (_unmounted_volume, crossref.unmatched_mounts, "'spare' is never mounted"),
    (_service_target_port, crossref.service_mismatches, "serves port 'api'"),
    (_service_selector, crossref.service_mismatches, "matches no pod template"),
    (_probe_port, crossref.probe_mismatches, "no port 8080"),
    (_service_account, crossref.identity_mismatches, "no ServiceAccount 'greenai'"),
    (_binding_subject, crossref.identity_mismatches, "no ServiceAccount 'default'"),
]


@pytest.mark.parametrize(
    ("breakage", "check", "problem"), BREAKAGES, ids=[b[0].__name__ for b in BREAKAGES]
)
def test_each_check_catches_a_broken_manifest(
    breakage: Callable[[list[Resource]], None],
    check: Callable[[list[Resource]], list[str]],
    problem: str,
) -> None:
    objects = rendered("daemon-postgres")
    assert check(objects) == []
    breakage(objects)
    found = check(objects)
    assert len(found) == 1 and problem in found[0], found


def test_cronjob_volumes_of_the_job_pod_are_checked_too() -> None:
    objects = rendered("cronjob")
    _pod(objects, "CronJob")["volumes"][1]["secret"]["items"][0]["key"] = "user"
    assert crossref.missing_keys(objects) == [
        "CronJob/greenai-train volume watttime: Secret 'greenai-watttime' has no key 'user'"
    ]
