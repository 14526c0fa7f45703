"""The image, checked without a Docker engine: what the issue asks of it (multi-stage, slim
base, non-root, no build tools at run time, `greenai` as entrypoint, state under a volume) and
that every file it copies is in the checkout and in the build context."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.deploy.dockerfile import DockerIgnore, Stage, copy_sources, exec_form, files_under
from tests.deploy.dockerfile import stages as parse_stages
from tests.test_packaging import SOURCES as WHEEL_SOURCES

REPO = Path(__file__).resolve().parents[2]
BUILD_TOOLS = re.compile(
    r"\b(build-essential|gcc|g\+\+|clang|make|cmake|libc6?-dev|[\w.+-]+-dev)\b"
)
STATE = "/var/lib/greenai"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_stages((REPO / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ignore() -> DockerIgnore:
    return DockerIgnore((REPO / ".dockerignore").read_text(encoding="utf-8"))


def test_multi_stage_on_slim_python_3_11(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", s.base) for s in stages)


def test_final_stage_runs_as_a_numeric_non_root_user(stages: list[Stage]) -> None:
    user = stages[-1].last("USER")
    assert user is not None and re.fullmatch(r"\d+(:\d+)?", user), user
    assert all(int(part) != 0 for part in user.split(":"))


def test_final_stage_installs_no_build_tools(stages: list[Stage]) -> None:
    runs = " ".join(stages[-1].all("RUN"))
    assert not BUILD_TOOLS.search(runs), BUILD_TOOLS.search(runs)


def test_build_tools_pattern_sees_them() -> None:
    """The check above can fail: it sees a compiler wherever it is installed."""
    for line in ("apt-get install -y gcc", "apt-get install build-essential", "libpq-dev"):
        assert BUILD_TOOLS.search(line), line
    assert not BUILD_TOOLS.search("apt-get install --yes --no-install-recommends tini")


def test_final_stage_copies_only_from_the_build_stage(stages: list[Stage]) -> None:
    names = {s.name for s in stages[:-1]}
    for value in stages[-1].all("COPY") + stages[-1].all("ADD"):
        _, stage = copy_sources(value)
        assert stage in names, f"the final stage copies from the context: {value}"


def test_entrypoint_is_greenai_and_state_is_a_volume(stages: list[Stage]) -> None:
    final = stages[-1]
    entrypoint = exec_form(final.last("ENTRYPOINT") or "")
    # tini may stand before greenai (it reaps orphans as PID 1); greenai is the program it runs.
    assert entrypoint[-1] == "greenai"
    assert entrypoint[:-1] in ([], ["/usr/bin/tini", "--"])
    assert STATE in exec_form(final.last("VOLUME") or "")
    env = " ".join(final.all("ENV"))
    assert f"GREENAI_HOME={STATE}" in env.split()
    assert final.last("WORKDIR") == STATE


def test_every_copy_source_is_in_the_checkout_and_the_context(
    stages: list[Stage], ignore: DockerIgnore
) -> None:
    copied = []
    for stage in stages:
        for value in stage.all("COPY"):
            sources, from_stage = copy_sources(value)
            if from_stage is None:
                copied += sources
    # What the wheel is built from (tests/test_packaging.py builds it from exactly these).
    assert sorted(copied) == sorted(WHEEL_SOURCES)
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: not in the checkout"
        files = files_under(REPO, source)
        assert files, f"COPY {source}: nothing to copy"
        left_out = [f for f in files if ignore.excludes(f)]
        assert not left_out, f"COPY {source}: .dockerignore leaves out {left_out[:3]}"


def test_context_leaves_out_state_secrets_and_environments(ignore: DockerIgnore) -> None:
    for path in (
        ".venv/bin/python",
        ".git/config",
        "artifacts/env.key",
        "artifacts/greenai.db",
        "tests/test_settings.py",
        "greenai/__pycache__/cli.cpython-311.pyc",
        "greenai.egg-info/PKG-INFO",
    ):
        assert ignore.excludes(path), path


@pytest.mark.parametrize(
    ("rules", "path", "excluded"),
    [
        ("*\n!greenai\n", "greenai/core/x.py", False),
        ("*\n!greenai\n", "tests/x.py", True),
        ("*\n!greenai\n**/__pycache__\n", "greenai/a/__pycache__/x.pyc", True),
        ("docs/*.md\n", "docs/a.md", True),
        ("docs/*.md\n", "docs/sub/a.md", False),  # * never crosses a /
        ("docs\n!docs/keep.md\n", "docs/keep.md", False),
        ("# comment\n\n/build\n", "build/x", True),
    ],
)
def test_dockerignore_matches_as_docker_does(rules: str, path: str, excluded: bool) -> None:
    assert DockerIgnore(rules).excludes(path) is excluded


def test_stages_and_forms_are_parsed() -> None:
    text = (
        "ARG V=3.11\nFROM python:3.11-slim AS build\nRUN a \\\n    && b\n"
        "FROM --platform=linux/amd64 python:3.11-slim\nCOPY --from=build /a /b\n"
        'ENTRYPOINT ["greenai"]\nCMD serve --host 0.0.0.0\n'
    )
    build, final = parse_stages(text)
    assert (build.base, build.name, final.name) == ("python:3.11-slim", "build", None)
    assert build.all("RUN") == ["a     && b"]
    assert copy_sources(final.all("COPY")[0]) == (["/a"], "build")
    assert exec_form(final.last("ENTRYPOINT") or "") == ["greenai"]
    assert exec_form(final.last("CMD") or "") == ["serve", "--host", "0.0.0.0"]


def test_the_image_installs_the_extras_the_manifests_need(stages: list[Stage]) -> None:
    """The daemon's manifests run the kubernetes executor, one of them on PostgreSQL."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    declared = set(pyproject["project"]["optional-dependencies"])
    installs = [
        found.group(1)
        for run in stages[0].all("RUN")
        if (found := re.search(r"pip install \"\.\[([\w,-]+)\]\"", run))
    ]
    assert len(installs) == 1, installs
    extras = set(installs[0].split(","))
    assert {"postgres", "kubernetes"} <= extras <= declared
