"""The import graph keeps its direction: lower layers never import higher ones."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "greenai"

# Modules (or packages) and what they may never import.
FORBIDDEN = {
    "greenai/core/domain.py": ("greenai.",),  # standard library only (and nothing of ours)
    "greenai/policies": (
        "greenai.providers",
        "greenai.storage.store",
        "greenai.api",
        "greenai.scheduling.engine",
        "greenai.cli",
        "greenai.meters",
        "greenai.evidence",
        "greenai.daemon",
        "httpx",
    ),
    "greenai/providers": (
        "greenai.policies",
        "greenai.storage.store",
        "greenai.api",
        "greenai.cli",
    ),
    "greenai/meters": ("greenai.providers", "greenai.policies", "greenai.api", "greenai.cli"),
    "greenai/evidence": (
        "greenai.providers",
        "greenai.api",
        "greenai.cli",
        "greenai.storage.store",
    ),
}
ALLOWED_IN_DOMAIN = ("greenai.core.domain",)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_layer_imports_upwards() -> None:
    violations = []
    for target, banned in FORBIDDEN.items():
        root = PACKAGE.parent / target
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        assert files, target
        for file in files:
            for name in imports_of(file):
                if name in ALLOWED_IN_DOMAIN:
                    continue
                if any(name == b.rstrip(".") or name.startswith(b) for b in banned):
                    violations.append(f"{file.relative_to(PACKAGE.parent)} imports {name}")
    assert violations == []


def test_library_code_never_prints_or_exits() -> None:
    offenders = []
    for file in sorted(PACKAGE.rglob("*.py")):
        rel = file.relative_to(PACKAGE.parent).as_posix()
        if rel.startswith(("greenai/cli/", "greenai/demo.py", "greenai/__main__.py")):
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
