"""The test renderer does what kustomize does for the fields deploy/k8s uses, and refuses the
rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.kustomize import KustomizeError, render, strategic_merge

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 1
  strategy: {type: Recreate}
  template:
    spec:
      containers:
        - name: app
          image: app:1
          args: [a, b]
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
          volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, emptyDir: {}}]
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_strategic_merge_merges_keyed_lists_and_replaces_others() -> None:
    base = {
        "containers": [{"name": "a", "args": ["x"], "env": [{"name": "A", "value": "1"}]}],
        "volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}],
    }
    patch = {
        "containers": [{"name": "a", "args": ["y"], "env": [{"name": "B", "value": "2"}]}],
        "volumes": [{"name": "w", "$patch": "delete"}, {"name": "x", "secret": {}}],
    }
    merged = strategic_merge(base, patch)
    env = [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]  # new items first
    assert merged["containers"] == [{"name": "a", "args": ["y"], "env": env}]
    assert merged["volumes"] == [{"name": "x", "secret": {}}, {"name": "v", "emptyDir": {}}]
    assert strategic_merge({"a": 1, "b": 2}, {"a": None}) == {"b": 2}


def test_volume_mounts_merge_by_mount_path() -> None:
    base = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    patch = {"volumeMounts": [{"name": "other", "mountPath": "/data", "readOnly": True}]}
    assert strategic_merge(base, patch) == {
        "volumeMounts": [{"name": "other", "mountPath": "/data", "readOnly": True}]
    }


def test_overlay_patches_its_base_and_sets_the_namespace(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "base/kustomization.yaml": "resources: [deployment.yaml, rbac.yaml]\n",
            "base/deployment.yaml": DEPLOYMENT,
            "base/rbac.yaml": (
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                "metadata: {name: rb}\nroleRef: {apiGroup: rbac.authorization.k8s.io, "
                "kind: Role, name: r}\nsubjects: [{kind: ServiceAccount, name: sa}]\n"
            ),
            "overlay/kustomization.yaml": (
                "namespace: ns\nresources: [../base]\npatches:\n  - path: patch.yaml\n"
            ),
            "overlay/patch.yaml": (
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n"
                "  replicas: 3\n  template:\n    spec:\n      containers:\n"
                "        - name: app\n          env: [{name: B, value: '3'}]\n"
            ),
        },
    )
    deployment, binding = render(tmp_path / "overlay")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert container["args"] == ["a", "b"]
    assert deployment["metadata"]["namespace"] == binding["metadata"]["namespace"] == "ns"
    assert binding["subjects"][0]["namespace"] == "ns"


@pytest.mark.parametrize(
    ("kustomization", "error"),
    [
        ("resources: [d.yaml]\nimages: [{name: app, newTag: '2'}]\n", "unsupported"),
        ("resources: [d.yaml, d.yaml]\n", "defined twice"),
        ("resources: [d.yaml]\npatches: [{path: p.yaml, target: {kind: Deployment}}]\n", "by path"),
        ("resources: [d.yaml]\npatches: [{path: p.yaml}]\n", "is no resource"),
    ],
)
def test_what_it_cannot_render_exactly_is_an_error(
    tmp_path: Path, kustomization: str, error: str
) -> None:
    write(
        tmp_path,
        {
            "kustomization.yaml": kustomization,
            "d.yaml": DEPLOYMENT,
            "p.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\n",
        },
    )
    with pytest.raises(KustomizeError, match=error):
        render(tmp_path)


def test_a_folder_without_kustomization_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KustomizeError, match="no kustomization"):
        render(tmp_path)
