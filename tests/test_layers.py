"""The import graph keeps its direction: lower layers never import higher ones.

Layers, lowest first (docs/architecture.md, "Packages and the direction of imports"):

    core <- formats <- providers, policies, meters <- evidence, storage, executors
         <- scheduling, oneshot, simulate <- api, cli, daemon, demo, __main__

(``formats`` sits just above ``core``: the trace provider replays trace files.)

A package may import itself and packages of strictly lower layers; siblings in one layer may
not import each other. The deliberate exceptions are written into ``ALLOWED`` below, each
with its reason. The checker (``tests/layering.py``) is itself tested on synthetic trees, so
a green run means "no violation", not "nothing was looked at".
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.layering import ExternalRule, check_external, check_layers, imports_of, scan

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "greenai"
ROOT = "greenai"  # the package root itself (greenai/__init__.py) in the table
MOUNTS = {"migrations": REPO / "migrations"}  # shipped as greenai.migrations

L0 = frozenset({"core"})
LF = L0 | {"formats"}
L1 = LF | {"providers", "policies", "meters"}
L2 = L1 | {"evidence", "storage", "executors"}
L3 = L2 | {"scheduling", "oneshot", "simulate"}

# For each package (top-level subpackage or module of greenai), the greenai packages it may
# import besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    # file formats (CSV in, domain out): over core only
    "formats": L0,
    # layer 1: over core and the file formats
    "providers": LF,
    "policies": LF,
    "meters": LF,
    # layer 2
    "evidence": L1,
    "storage": L1,
    "executors": L1,
    # layer 3
    "scheduling": L2,
    "oneshot": L2,
    "simulate": L2,
    # front-ends and composition roots; only they may import the package root
    "api": L3 | {ROOT},
    "daemon": L3 | {ROOT, "api"},  # the composition root serves the API
    "demo": L3 | {ROOT},
    "cli": L3 | {ROOT, "daemon", "demo"},  # the front-end over everything
    # adapters that other schedulers load (Airflow's operators): front-ends over the library
    "integrations": L3 | {ROOT},
    "__main__": L3 | {ROOT, "cli"},  # `python -m greenai` is the `greenai` command
    # the public Python API (greenai.should_run, the vocabulary): the library, no front-end
    ROOT: L3,
    # Alembic's env.py: the schema and the engine factory, nothing else
    "migrations": frozenset({"core", "storage"}),
}

# Third-party packages that do I/O or belong to a front-end: never in policies.
IO_THIRD_PARTY = frozenset(
    {
        "httpx", "requests", "urllib3", "sqlalchemy", "alembic", "psycopg", "fastapi",
        "starlette", "uvicorn", "pydantic", "pydantic_settings", "typer", "click", "rich",
        "apscheduler", "filelock", "pynvml", "codecarbon", "matplotlib", "psutil",
    }
)  # fmt: skip
# Standard-library modules that do I/O or read the clock: never in policies.
IO_STDLIB = frozenset(
    {
        "os", "io", "pathlib", "shutil", "tempfile", "glob", "socket", "ssl", "select",
        "selectors", "subprocess", "signal", "multiprocessing", "threading", "asyncio",
        "concurrent", "urllib", "http", "sqlite3", "time",
    }
)  # fmt: skip

EXTERNAL = (
    ExternalRule(
        "core/domain.py",
        forbidden=frozenset({ROOT}),
        why="core/domain.py imports only the standard library",
    ),
    ExternalRule(
        "core",
        exempt=("core/settings.py",),
        why="core imports no third-party package",
    ),
    ExternalRule(
        "core/settings.py",
        third_party=frozenset({"pydantic", "pydantic_settings"}),
        why="core/settings.py may import pydantic and pydantic_settings only",
    ),
    ExternalRule(
        "policies",
        third_party=frozenset({"numpy"}),
        forbidden=IO_THIRD_PARTY | IO_STDLIB,
        why="policies are pure: numpy welcome, no I/O, no clock",
    ),
)


# --- the real package ------------------------------------------------------------------------


def test_table_covers_every_package() -> None:
    on_disk = {ROOT, *MOUNTS}
    for entry in PACKAGE.iterdir():
        if entry.suffix == ".py" and entry.stem != "__init__":
            on_disk.add(entry.stem)
        elif entry.is_dir() and any(entry.rglob("*.py")):
            on_disk.add(entry.name)
    assert set(ALLOWED) == on_disk


def test_no_layer_imports_sideways_or_upwards() -> None:
    violations = check_layers(PACKAGE, "greenai", ALLOWED, MOUNTS)
    assert violations == [], "\n".join(["", *violations])


def test_core_and_policies_import_only_what_they_may() -> None:
    violations = check_external(PACKAGE, "greenai", EXTERNAL, MOUNTS)
    assert violations == [], "\n".join(["", *violations])


def _new_top_level_modules(statement: str) -> dict[str, object]:
    """Run ``statement`` in a fresh interpreter from the repository root; the top-level names
    of the modules it loaded (those already loaded at start-up are not counted)."""
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "after = set(sys.modules)\n"
        "import json\n"
        "tops = sorted({name.split('.')[0] for name in after - before})\n"
        "where = getattr(sys.modules.get('greenai'), '__file__', None)\n"
        "print(json.dumps({'tops': tops, 'greenai': where}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _is_stdlib(name: str) -> bool:
    # sysconfig loads a generated, platform-named module of the standard library
    return name in sys.stdlib_module_names or name.startswith("_sysconfigdata_")


@pytest.mark.parametrize(
    "statement", ["import greenai.core.domain", "import greenai.core", "import greenai"]
)
def test_importing_loads_no_third_party_module(statement: str) -> None:
    loaded = _new_top_level_modules(statement)
    where = loaded["greenai"]
    assert isinstance(where, str), "greenai was not imported"
    assert Path(where).resolve() == (PACKAGE / "__init__.py").resolve(), "another greenai"
    tops = loaded["tops"]
    assert isinstance(tops, list)
    offenders = [name for name in tops if not _is_stdlib(name) and name != ROOT]
    assert offenders == [], f"`{statement}` loads third-party modules"


def test_library_code_never_prints_or_exits() -> None:
    may_exit = (
        "greenai/cli/",
        "greenai/demo.py",
        "greenai/__main__.py",
        "greenai/executors/supervisor.py",  # the per-job supervisor is a process entry point
    )
    offenders = []
    for file in sorted(PACKAGE.rglob("*.py")):
        rel = file.relative_to(PACKAGE.parent).as_posix()
        if rel.startswith(may_exit):
            continue
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id == "print":
                    offenders.append(f"{rel}:{node.lineno} print")
                if (
                    isinstance(func, ast.Attribute)
                    and func.attr == "exit"
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "sys"
                ):
                    offenders.append(f"{rel}:{node.lineno} sys.exit")
    assert offenders == []


# --- the checker on synthetic trees ----------------------------------------------------------


def _tree(base: Path, files: dict[str, str]) -> Path:
    """Write a synthetic ``greenai`` package under ``base``; returns its folder."""
    for name, text in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in {p.parent for p in (base / n for n in files)}:
        if folder != base and not (folder / "__init__.py").exists():
            (folder / "__init__.py").write_text("", encoding="utf-8")
    return base / "greenai"


CLEAN = {
    "greenai/__init__.py": "from greenai.core import domain\n",
    "greenai/core/domain.py": "from __future__ import annotations\nimport dataclasses\n",
    "greenai/core/errors.py": "class GreenAIError(Exception):\n    pass\n",
    "greenai/policies/now.py": "from greenai.core.domain import Job\nfrom . import view\n",
    "greenai/policies/view.py": "import numpy as np\nfrom ..core import errors\n",
    "greenai/storage/store.py": "import sqlalchemy\nfrom greenai.core import errors\n",
    "greenai/storage/x.py": "from greenai.storage import store\nfrom .store import Store\n",
    "greenai/executors/local.py": (
        "def run():\n    from greenai.core.errors import GreenAIError\n    return GreenAIError\n"
    ),
    "greenai/evidence/x.py": "from ..policies import now\n",
    "greenai/api/app.py": "import greenai\nfrom greenai.storage.store import Store\n",
    "greenai/daemon.py": "from greenai.api import app\n",
    "greenai/cli/app.py": "import greenai.daemon\nfrom greenai import daemon\n",
    "migrations/env.py": "from greenai.storage import store\nfrom greenai.core import errors\n",
}


def _check(base: Path, **changes: str) -> list[str]:
    root = _tree(base, {**CLEAN, **changes})
    return check_layers(root, "greenai", ALLOWED, {"migrations": base / "migrations"})


def test_a_clean_tree_reports_nothing(tmp_path: Path) -> None:
    assert _check(tmp_path) == []
    root = _tree(tmp_path, CLEAN)
    assert check_external(root, "greenai", EXTERNAL) == []


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "greenai/policies/now.py",
            "from greenai import store\n",
            "greenai/policies/now.py:1 imports greenai (policies may import: core, formats)",
        ),
        (
            "greenai/executors/local.py",
            "import os\n\n\ndef run():\n    from greenai.storage import Store\n    return Store\n",
            "greenai/executors/local.py:5 imports greenai.storage "
            "(executors may import: core, formats, meters, policies, providers)",
        ),
        (
            "greenai/storage/x.py",
            "import greenai.api.app\n",
            "greenai/storage/x.py:1 imports greenai.api.app "
            "(storage may import: core, formats, meters, policies, providers)",
        ),
        (
            "greenai/evidence/x.py",
            "from ..storage import store\n",
            "greenai/evidence/x.py:1 imports greenai.storage.store "
            "(evidence may import: core, formats, meters, policies, providers)",
        ),
        (
            "greenai/scheduling/engine.py",
            "from greenai.oneshot import flow\n",
            "greenai/scheduling/engine.py:1 imports greenai.oneshot "
            "(scheduling may import: core, evidence, executors, formats, meters, policies, "
            "providers, storage)",
        ),
        (
            "greenai/api/app.py",
            "from greenai.cli import app\n",
            "greenai/api/app.py:1 imports greenai.cli.app "
            "(api may import: core, evidence, executors, formats, greenai, meters, oneshot, "
            "policies, providers, scheduling, simulate, storage)",
        ),
        (
            "migrations/env.py",
            "from greenai.evidence import x\n",
            "migrations/env.py:1 imports greenai.evidence.x (migrations may import: core, storage)",
        ),
    ],
)
def test_a_planted_violation_is_reported(
    tmp_path: Path, path: str, text: str, expected: str
) -> None:
    assert _check(tmp_path, **{path: text}) == [expected]


def test_from_package_import_resolves_to_the_submodule(tmp_path: Path) -> None:
    """``from greenai import store`` is ``greenai.store`` when that module exists; a package
    that the table does not know is then reported, both where it imports and where it is
    imported."""
    found = _check(
        tmp_path,
        **{"greenai/store.py": "", "greenai/policies/now.py": "from greenai import store\n"},
    )
    assert found == [
        "greenai/policies/now.py:1 imports greenai.store (policies may import: core, formats)",
        "greenai/store.py: store is not in the allowed-imports table",
    ]


def test_imports_resolve_like_python(tmp_path: Path) -> None:
    text = (
        "import greenai.core.domain as d\n"
        "from greenai import storage, VERSION\n"
        "from greenai.storage import store, Store\n"
        "from . import sibling\n"
        "from .. import core\n"
        "from ..storage.store import Store\n"
        "from ... import too_far\n"
        "import importlib\n"
        "importlib.import_module('greenai.api.app')\n"
        "def late():\n"
        "    import greenai.daemon\n"
    )
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            "greenai/evidence/probe.py": text,
            "greenai/evidence/sibling.py": "",
        },
    )
    tree = scan(root, "greenai")
    probe = next(f for f in tree.files if f.module == "greenai.evidence.probe")
    resolved = [(i.line, i.module) for i in imports_of(probe, tree.modules)]
    assert resolved == [
        (1, "greenai.core.domain"),
        (2, "greenai"),
        (2, "greenai.storage"),
        (3, "greenai.storage"),
        (3, "greenai.storage.store"),
        (4, "greenai.evidence.sibling"),
        (5, "greenai.core"),
        (6, "greenai.storage.store"),
        (7, None),
        (8, "importlib"),
        (9, "greenai.api.app"),
        (11, "greenai.daemon"),
    ]
    init = next(f for f in tree.files if f.module == "greenai.policies")
    assert init.is_package


def test_relative_import_from_a_package_init_starts_at_that_package(tmp_path: Path) -> None:
    found = _check(
        tmp_path, **{"greenai/policies/__init__.py": "from . import now\nfrom .. import storage\n"}
    )
    assert found == [
        "greenai/policies/__init__.py:2 imports greenai.storage "
        "(policies may import: core, formats)"
    ]


def test_a_relative_import_above_the_package_is_reported(tmp_path: Path) -> None:
    found = _check(tmp_path, **{"greenai/evidence/x.py": "from ... import anything\n"})
    assert found == ["greenai/evidence/x.py:1 from ... import anything climbs above greenai"]


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "greenai/core/domain.py",
            "from greenai.core.errors import GreenAIError\n",
            "greenai/core/domain.py:1 imports greenai.core.errors "
            "(core/domain.py imports only the standard library)",
        ),
        (
            "greenai/core/time.py",
            "def parse():\n    import dateutil.parser\n",
            "greenai/core/time.py:2 imports third-party dateutil.parser "
            "(core imports no third-party package)",
        ),
        (
            "greenai/core/settings.py",
            "import pydantic_settings\nimport yaml\n",
            "greenai/core/settings.py:2 imports third-party yaml "
            "(core/settings.py may import pydantic and pydantic_settings only)",
        ),
        (
            "greenai/policies/now.py",
            "import httpx\n",
            "greenai/policies/now.py:1 imports httpx "
            "(policies are pure: numpy welcome, no I/O, no clock)",
        ),
        (
            "greenai/policies/view.py",
            "from time import monotonic\n",
            "greenai/policies/view.py:1 imports time "
            "(policies are pure: numpy welcome, no I/O, no clock)",
        ),
    ],
)
def test_a_planted_foreign_import_is_reported(
    tmp_path: Path, path: str, text: str, expected: str
) -> None:
    root = _tree(tmp_path, {**CLEAN, path: text})
    assert check_external(root, "greenai", EXTERNAL) == [expected]
