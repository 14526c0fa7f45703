"""A static checker for the direction of imports between greenai's packages.

Pure functions of a folder on disk and a table: nothing here imports the code it checks, so
the same functions run on the real package and on synthetic trees written by the tests.

Every import statement counts, wherever it is (module level, inside a function, under
``if TYPE_CHECKING:``), and so does ``importlib.import_module("literal")``. Names resolve
the way Python resolves them:

- ``import a.b.c`` imports ``a.b.c``;
- ``from P import N`` imports ``P.N`` when ``P.N`` is a module or package of the tree,
  else ``P`` (``N`` is then a name defined in ``P``);
- relative imports resolve against the importing module's own package (a package's
  ``__init__.py`` is its own package).

An imported module of ours is owned by its top-level package or module: ``greenai.storage.store``
by ``storage``, ``greenai.daemon`` by ``daemon``, ``greenai`` itself by the root (``greenai``).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

STDLIB = frozenset(sys.stdlib_module_names)
_IMPORT_FUNCTIONS = frozenset({"import_module", "__import__"})


@dataclass(frozen=True, slots=True)
class Import:
    """One imported module: where the import is written and the absolute name it resolves to.
    ``module`` is ``None`` for a relative import that climbs above the top-level package."""

    line: int
    module: str | None
    written: str


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A module of the tree: its file, its dotted name, how to name it in messages
    (``shown``) and its path inside the package (``relative``: ``core/domain.py``)."""

    path: Path
    module: str
    is_package: bool
    shown: str
    relative: str


@dataclass(frozen=True, slots=True)
class ExternalRule:
    """What a part of the tree may import from outside greenai.

    ``scope`` is a path relative to the package folder (``core``, ``core/domain.py``);
    ``third_party`` the top-level names allowed besides the standard library (``None``: any);
    ``forbidden`` top-level names never allowed, standard library or not (the package's own
    name here forbids every greenai import); ``exempt`` sub-scopes the rule does not cover."""

    scope: str
    third_party: frozenset[str] | None = frozenset()
    forbidden: frozenset[str] = frozenset()
    exempt: tuple[str, ...] = ()
    why: str = ""

    def covers(self, relative: str) -> bool:
        return _within(relative, self.scope) and not any(_within(relative, e) for e in self.exempt)


@dataclass(frozen=True, slots=True)
class Tree:
    """The modules of a package folder (plus folders mounted as subpackages)."""

    package: str
    files: tuple[SourceFile, ...]
    modules: frozenset[str] = field(default_factory=frozenset)


def _within(relative: str, scope: str) -> bool:
    scope = scope.strip("/")
    return relative == scope or relative.startswith(scope + "/")


def scan(root: Path, package: str, mounts: Mapping[str, Path] | None = None) -> Tree:
    """The ``.py`` modules under ``root`` (the folder of ``package``), and under each folder
    in ``mounts`` as the subpackage it names (``{"migrations": repo / "migrations"}`` for a
    top-level folder shipped as ``greenai.migrations``). Messages name files relative to
    ``root.parent``, so they do not depend on where the tree lives."""
    base = root.parent
    folders = [(root, package, "")]
    folders += [
        (folder, f"{package}.{name}", f"{name}/") for name, folder in sorted((mounts or {}).items())
    ]
    files: list[SourceFile] = []
    for folder, dotted, prefix in folders:
        for path in sorted(folder.rglob("*.py")):
            inside = path.relative_to(folder)
            parts = inside.with_suffix("").parts
            if "__pycache__" in parts:
                continue
            is_package = parts[-1] == "__init__"
            name = ".".join((dotted, *(parts[:-1] if is_package else parts)))
            try:
                shown = path.relative_to(base).as_posix()
            except ValueError:
                shown = path.as_posix()
            files.append(SourceFile(path, name, is_package, shown, prefix + inside.as_posix()))
    modules = {f.module for f in files}
    for name in list(modules):  # folders without __init__.py are (namespace) packages too
        parts = name.split(".")
        modules.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return Tree(package, tuple(files), frozenset(modules))


def imports_of(source: SourceFile, modules: frozenset[str]) -> list[Import]:
    """Every import in ``source``, resolved to absolute module names (see the module doc)."""
    tree = ast.parse(source.path.read_text(encoding="utf-8"), filename=str(source.path))
    own_package = source.module if source.is_package else source.module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, a.name, f"import {a.name}") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += _from_import(node, own_package, modules)
        elif isinstance(node, ast.Call):
            literal = _import_call(node)
            if literal is not None:
                found.append(Import(node.lineno, literal, f"import_module({literal!r})"))
    return sorted(found, key=lambda i: (i.line, i.module or ""))


def _from_import(node: ast.ImportFrom, own_package: str, modules: frozenset[str]) -> list[Import]:
    dots = "." * node.level
    written = f"from {dots}{node.module or ''} import {', '.join(a.name for a in node.names)}"
    if node.level:
        parts = own_package.split(".")
        if node.level - 1 >= len(parts):
            return [Import(node.lineno, None, written)]
        anchor = ".".join(parts[: len(parts) - (node.level - 1)])
        base = f"{anchor}.{node.module}" if node.module else anchor
    else:
        base = node.module or ""
    resolved = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        resolved.append(candidate if alias.name != "*" and candidate in modules else base)
    return [Import(node.lineno, name, written) for name in dict.fromkeys(resolved)]


def _import_call(node: ast.Call) -> str | None:
    """The module of ``importlib.import_module("x")`` / ``__import__("x")`` with a literal."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in _IMPORT_FUNCTIONS or not node.args:
        return None
    first = node.args[0]
    literal = first.value if isinstance(first, ast.Constant) else None
    if isinstance(literal, str) and literal and not literal.startswith("."):
        return literal
    return None


def owner(module: str, package: str) -> str | None:
    """The top-level package (or module) of ours that holds ``module``: ``storage`` for
    ``greenai.storage.store``, the package's own name for the root; ``None`` if not ours."""
    if module == package:
        return package
    if module.startswith(package + "."):
        return module[len(package) + 1 :].split(".")[0]
    return None


def _allowed_text(names: frozenset[str]) -> str:
    return ", ".join(sorted(names)) or "nothing of greenai but itself"


def _walk(tree: Tree) -> Iterator[tuple[SourceFile, Import]]:
    for source in tree.files:
        for found in imports_of(source, tree.modules):
            yield source, found


def check_layers(
    root: Path,
    package: str,
    allowed: Mapping[str, frozenset[str]],
    mounts: Mapping[str, Path] | None = None,
) -> list[str]:
    """Every import of one of our packages that ``allowed`` does not permit, as readable
    lines (``greenai/policies/now.py:3 imports greenai.storage (policies may import: core)``).

    ``allowed[p]`` is the set of packages that package ``p`` may import besides itself; keys
    and members are top-level subpackage or module names (``storage``, ``daemon``), the
    mounted names (``migrations``), and ``package`` itself for the root. A file of a package
    missing from the table is reported too: the table must cover the whole tree."""
    tree = scan(root, package, mounts)
    violations: list[str] = []
    for source in tree.files:
        mine = owner(source.module, package) or package
        if mine not in allowed:
            violations.append(f"{source.shown}: {mine} is not in the allowed-imports table")
            continue
        for found in imports_of(source, tree.modules):
            if found.module is None:
                violations.append(
                    f"{source.shown}:{found.line} {found.written} climbs above {package}"
                )
                continue
            theirs = owner(found.module, package)
            if theirs is None or theirs == mine or theirs in allowed[mine]:
                continue
            violations.append(
                f"{source.shown}:{found.line} imports {found.module} "
                f"({mine} may import: {_allowed_text(allowed[mine])})"
            )
    return violations


def check_external(
    root: Path,
    package: str,
    rules: tuple[ExternalRule, ...],
    mounts: Mapping[str, Path] | None = None,
) -> list[str]:
    """Imports from outside ``package`` (and, where a rule forbids it, from inside) that the
    ``rules`` covering a file do not permit."""
    tree = scan(root, package, mounts)
    violations: list[str] = []
    for source, found in _walk(tree):
        for rule in rules:
            if not rule.covers(source.relative) or found.module is None:
                continue
            top = found.module.split(".")[0]
            why = f" ({rule.why})" if rule.why else ""
            if top in rule.forbidden:
                violations.append(f"{source.shown}:{found.line} imports {found.module}{why}")
            elif top == package or top in STDLIB:
                continue
            elif rule.third_party is not None and top not in rule.third_party:
                violations.append(
                    f"{source.shown}:{found.line} imports third-party {found.module}{why}"
                )
    return violations
