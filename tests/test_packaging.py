"""The wheel is what users install: it must hold every module of the package and the Alembic
scripts (the top-level migrations/ folder, shipped as greenai.migrations), so `greenai db
upgrade` and `greenai serve` from an installed wheel still move their database's schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "greenai", "migrations")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built offline from a copy of the sources (the checkout is left untouched)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)
    built = root / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*command, "--quiet", "--wheel-dir", str(built), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [found] = built.glob("greenai-*.whl")
    return found


def test_the_wheel_holds_every_module_and_the_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"greenai/{p.relative_to(REPO / 'greenai').as_posix()}" for p in _sources("greenai")
    }
    expected |= {
        f"greenai/migrations/{p.relative_to(REPO / 'migrations').as_posix()}"
        for p in _sources("migrations")
    }
    assert expected - names == set()
    assert "greenai/migrations/script.py.mako" in names
    assert "greenai/data/gb-2023-hourly.csv" in names
    dashboard = {f"greenai/api/static/{p.name}" for p in (REPO / "greenai/api/static").iterdir()}
    assert "greenai/api/static/index.html" in dashboard and dashboard - names == set()
    assert not any(name.startswith(("migrations/", "tests/")) for name in names)


def test_an_installed_wheel_upgrades_its_own_database(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    database = tmp_path / "deep folder" / "greenai.db"
    env = {**os.environ, "PYTHONPATH": str(site), "GREENAI_HOME": str(tmp_path / "home")}
    where = subprocess.run(
        [sys.executable, "-c", "import greenai.storage.database as d; print(d.MIGRATIONS_DIR)"],
        env=env, capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert Path(where.stdout.strip()) == site / "greenai" / "migrations"
    upgraded = subprocess.run(
        [sys.executable, "-m", "greenai", "db", "upgrade", "--database-url", f"sqlite:///{database}"],
        env=env, capture_output=True, text=True, check=False, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr
    heads = sorted(p.name.split("_")[0] for p in (REPO / "migrations" / "versions").glob("0*.py"))
    assert f"database at revision {heads[-1]}" in upgraded.stdout


def _sources(folder: str) -> list[Path]:
    return [
        path
        for path in (REPO / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".csv")
    ]
