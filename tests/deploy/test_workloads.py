"""The CronJob and the daemon Deployment against greenai itself: its CLI parses their args,
its settings load from what their pods get, deadlines leave room for deferral, job and grace,
and the committed placeholder secrets never let a daemon start open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from greenai.core.errors import ConfigError
from greenai.daemon.service import check_bind
from greenai.daemon.wiring import check_executor
from greenai.executors.kubernetes_config import KubernetesSettings
from greenai.providers import parse_chain
from tests.deploy import greenai_checks as checks
from tests.deploy.dockerfile import exec_form, stages
from tests.deploy.kustomize import Resource
from tests.deploy.manifests import OVERLAYS, REPO, one, pod_template, rendered

DAEMONS = ("daemon-sqlite", "daemon-postgres")


def _container(objects: list[Resource]) -> tuple[dict[str, Any], dict[str, Any]]:
    [(_, pod, container)] = checks.greenai_containers(objects)
    return pod, container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_args_parse_with_greenai_and_settings_are_known(overlay: str) -> None:
    objects = rendered(overlay)
    assert checks.greenai_containers(objects), "no container runs the greenai image"
    assert checks.cli_problems(objects) == []
    assert checks.unknown_variables(objects) == []
    assert checks.unmounted_secret_files(objects) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deadlines_and_writable_paths(overlay: str, tmp_path: Path) -> None:
    objects = rendered(overlay)
    assert checks.deadline_problems(objects, tmp_path) == []
    assert checks.writable_paths_problems(objects, tmp_path) == []


def test_the_cronjob_runs_the_issue_s_command() -> None:
    cronjob = one(rendered("cronjob"), "CronJob")
    [container] = (pod_template(cronjob) or {})["spec"]["containers"]
    command, params = checks.parse_args(container["args"])
    assert (command, params["threshold"], params["defer_seconds"]) == ("run", 150, 3600)
    assert params["command"], "nothing after --"
    gpus = container["resources"]
    assert gpus["requests"]["nvidia.com/gpu"] == gpus["limits"]["nvidia.com/gpu"] >= 1


@pytest.mark.parametrize("overlay", DAEMONS)
def test_the_daemon_listens_on_every_address_with_its_token(overlay: str, tmp_path: Path) -> None:
    objects = rendered(overlay)
    pod, container = _container(objects)
    command, params = checks.parse_args(container["args"])
    assert (command, params["host"]) == ("serve", "0.0.0.0")
    settings = checks.load_container_settings(objects, pod, container, tmp_path)
    assert settings.api_token is not None and settings.api_token.get_secret_value() == "filled"
    check_bind(params["host"], has_token=True)
    check_executor(settings)  # the executor the ConfigMap names exists
    parse_chain(settings.provider)
    executor = KubernetesSettings.from_env(checks.environment(objects, container))
    executor.required_image()
    assert executor.namespace == one(objects, "Role")["metadata"]["namespace"]


def test_postgres_replicas_share_the_database_and_keys_but_not_a_home(tmp_path: Path) -> None:
    objects = rendered("daemon-postgres")
    pod, container = _container(objects)
    settings = checks.load_container_settings(objects, pod, container, tmp_path)
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] > 1
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")
    assert settings.env_key_file is not None and str(settings.env_key_file).startswith(
        str(tmp_path)
    )
    assert "greenai-daemon-7d9f8-abcde" in settings.home.parts
    sqlite = one(rendered("daemon-sqlite"), "Deployment")["spec"]
    assert (sqlite["replicas"], sqlite["strategy"]["type"]) == (1, "Recreate")


def test_committed_secrets_never_start_a_daemon_open(tmp_path: Path) -> None:
    """The token Secret ships empty: an empty token is no token, so the daemon refuses to
    listen beyond loopback rather than run with a token everyone can read here."""
    objects = rendered("daemon-sqlite")
    _, container = _container(objects)
    token = one(objects, "Secret", "greenai-api-token")
    assert token["stringData"]["token"] == ""
    env = checks.environment(objects, container)
    (tmp_path / "token").write_text(token["stringData"]["token"], encoding="utf-8")
    env["GREENAI_API_TOKEN_FILE"] = str(tmp_path / "token")
    from greenai.core.settings import load_settings

    settings = load_settings(env={k: v for k, v in env.items() if "WATTTIME" not in k})
    assert settings.api_token is None
    with pytest.raises(ConfigError, match=r"refusing to listen on 0\.0\.0\.0"):
        check_bind("0.0.0.0", has_token=settings.api_token is not None)


def test_containers_fit_the_image() -> None:
    """Same non-root user as the Dockerfile, state on its volume, its port, its entrypoint."""
    final = stages((REPO / "Dockerfile").read_text(encoding="utf-8"))[-1]
    uid = int((final.last("USER") or "").split(":")[0])
    [volume] = exec_form(final.last("VOLUME") or "")
    port = int(final.last("EXPOSE") or 0)
    for overlay in OVERLAYS:
        for _, pod, container in checks.greenai_containers(rendered(overlay)):
            assert pod["securityContext"]["runAsUser"] == uid
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert volume in {m["mountPath"] for m in container["volumeMounts"]}
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert "command" not in container
            ports = [p["containerPort"] for p in container.get("ports", [])]
            assert ports in ([], [port])


def _break_deadline(objects: list[Resource]) -> None:
    one(objects, "CronJob")["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] = 3600


def _drop_max_runtime(objects: list[Resource]) -> None:
    args = (pod_template(one(objects, "CronJob")) or {})["spec"]["containers"][0]["args"]
    index = args.index("--max-runtime")
    del args[index : index + 2]


def _short_grace(objects: list[Resource]) -> None:
    (pod_template(one(objects, "CronJob")) or {})["spec"]["terminationGracePeriodSeconds"] = 30


def _allow_concurrency(objects: list[Resource]) -> None:
    one(objects, "CronJob")["spec"]["concurrencyPolicy"] = "Allow"


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        (_break_deadline, "activeDeadlineSeconds 3600 < 10830"),
        (_drop_max_runtime, "without --max-runtime"),
        (_short_grace, "terminationGracePeriodSeconds < 60"),
        (_allow_concurrency, "concurrencyPolicy Forbid"),
    ],
)
def test_deadline_check_catches(breakage: Any, problem: str, tmp_path: Path) -> None:
    objects = rendered("cronjob")
    breakage(objects)
    found = checks.deadline_problems(objects, tmp_path)
    assert len(found) == 1 and problem in found[0], found


def test_greenai_checks_catch_broken_containers(tmp_path: Path) -> None:
    objects = rendered("daemon-sqlite")
    _, container = _container(objects)
    container["args"] = ["serve", "--hots", "0.0.0.0"]
    container["command"] = ["greenai"]
    problems = checks.cli_problems(objects)
    assert len(problems) == 2 and "entrypoint" in problems[0] and "--hots" in problems[1]
    one(objects, "ConfigMap", "greenai-daemon-config")["data"]["GREENAI_TRESHOLD"] = "150"
    assert checks.unknown_variables(objects) == [
        "greenai-daemon container greenai: greenai reads no GREENAI_TRESHOLD"
    ]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "api-token"]
    assert checks.unmounted_secret_files(objects) == [
        "greenai-daemon: GREENAI_API_TOKEN_FILE=/etc/greenai/api-token/token is no mounted "
        "Secret file"
    ]
    objects = rendered("daemon-sqlite")
    _, container = _container(objects)
    tmp = next(m for m in container["volumeMounts"] if m["name"] == "tmp")
    tmp["readOnly"] = True
    assert checks.writable_paths_problems(objects, tmp_path) == [
        "greenai-daemon: /tmp is on no writable volume"
    ]
