"""The daemon's Role grants exactly what the kubernetes executor's client calls need: a
missing verb is a 403 at the first job, an extra one a privilege nobody uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.manifests import REPO, one, rendered
from tests.deploy.rbac import UnknownCall, executor_rules, granted_rules, needed_rules

EXECUTORS = REPO / "greenai" / "executors"


@pytest.mark.parametrize("overlay", ["daemon-sqlite", "daemon-postgres"])
def test_role_grants_exactly_what_the_executor_calls(overlay: str) -> None:
    needed = executor_rules(EXECUTORS)
    granted = granted_rules(one(rendered(overlay), "Role"))
    assert needed, "no Kubernetes client call found in greenai/executors"
    assert needed - granted == set(), "the executor calls what the Role does not allow"
    assert granted - needed == set(), "the Role allows what the executor never calls"


def test_calls_are_read_as_rbac_rules() -> None:
    source = """
def go(batch, core, watch):
    batch.create_namespaced_job("ns", {})
    batch.read_namespaced_job("j", "ns")
    core.read_namespaced_pod_log("p", "ns")
    batch.patch_namespaced_job_status("j", "ns", {})
    for event in watch.Watch().stream(core.list_namespaced_pod, "ns"):
        pass
"""
    assert needed_rules(source) == {
        ("batch", "jobs", "create"),
        ("batch", "jobs", "get"),
        ("", "pods/log", "get"),
        ("batch", "jobs/status", "patch"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
    }


def test_a_call_the_role_lacks_is_seen(tmp_path: Path) -> None:
    (tmp_path / "extra.py").write_text("api.read_namespaced_pod_log('p', 'ns')\n", "utf-8")
    granted = granted_rules(one(rendered("daemon-sqlite"), "Role"))
    assert executor_rules(tmp_path) - granted == {("", "pods/log", "get")}


def test_an_unknown_resource_is_an_error_not_a_guess() -> None:
    with pytest.raises(UnknownCall, match="secret"):
        needed_rules("core.read_namespaced_secret('s', 'ns')\n")
