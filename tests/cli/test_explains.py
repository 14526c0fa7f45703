"""The CLI explains itself (issue 12): one line for a flat forecast, a source named once,
settings files and paths named in one line with exit 2, never a traceback.

In-process with Typer's runner; output is not a terminal, so it is never wrapped (and these
tests pass at any terminal width and from any directory: no greenai.toml is read from it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
import typer
from typer.testing import CliRunner

from greenai.cli import app
from tests.cli.conftest import GB_TRACE, REPO

WORKLOAD = REPO / "examples" / "workload-gb-2023.csv"

UK = "https://api.carbonintensity.org.uk"
NOW = "2023-05-04T12:40:00Z"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "GREENAI_HOME": str(tmp_path / "home"),
        "GREENAI_METERS": "estimate",
        "GREENAI_REQUEST_RETRIES": "0",
        "GREENAI_CONFIG": str(tmp_path / "absent.toml"),
        "COLUMNS": "80",
    }


def invoke(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_a_flat_source_is_one_line_not_a_table_of_cleanest_rows(env: dict[str, str]) -> None:
    code, out, _ = invoke(env, "intensity", "--provider", "egrid:RFCE")
    assert code == 0
    [line] = out.splitlines()
    assert line.startswith("egrid:RFCE average: ") and "static" in line
    assert "cleanest" not in out


def test_a_stand_in_source_is_named_once(env: dict[str, str]) -> None:
    with respx.mock(base_url=UK) as router:
        router.get(url__regex=r".*").respond(503)
        code, out, _ = invoke(env, "intensity", "--provider", "uk,egrid:RFCE", "--trace-start", NOW)
    assert code == 0
    assert "(fallback: egrid:RFCE)" not in out
    assert out.startswith("egrid:RFCE (fallback) average")
    assert "stood in for uk:national: " in out and "uk:national: uk:national" not in out


def test_no_signal_names_the_chain_once(env: dict[str, str]) -> None:
    with respx.mock(base_url=UK) as router:
        router.get(url__regex=r".*").respond(503)
        code, _, err = invoke(
            env, "run", "--require-signal", "--provider", "uk", "--threshold", "100",
            "--trace-start", NOW, "--", "true",
        )  # fmt: skip
    assert code == 3
    assert "chain: no source answered" in err and "chain: chain:" not in err


def test_a_varying_trace_still_gets_its_table(env: dict[str, str]) -> None:
    code, out, _ = invoke(
        env, "intensity", "--provider", f"trace:{GB_TRACE}", "--trace-start",
        "2023-03-15T18:00:00Z", "--hours", "3",
    )  # fmt: skip
    assert code == 0 and "cleanest" in out


def one_line_exit_2(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    [line] = err.splitlines()
    return line


def test_a_malformed_or_misspelt_config_file_is_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    toml = tmp_path / "greenai.toml"
    toml.write_text("threshold = \n")
    env["GREENAI_CONFIG"] = str(toml)
    line = one_line_exit_2(invoke(env, "intensity", "--provider", "egrid:RFCE"))
    assert f"{toml}: line 1, column 13: invalid value" in line
    toml.write_text("threshhold = 100\n")
    line = one_line_exit_2(invoke(env, "jobs"))
    assert "unknown setting 'threshhold' (did you mean 'threshold'?)" in line


def test_paths_that_cannot_be_written_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line_exit_2(
        invoke(env, "run", "--home", str(blocker / "home"), "--provider", "egrid:RFCE", "--",
               "true")
    )  # fmt: skip
    assert line.startswith(f"greenai: --home {blocker / 'home'}: cannot create it")
    sim = ["simulate", "--trace", str(GB_TRACE), "--workload", str(WORKLOAD)]
    line = one_line_exit_2(invoke(env, *sim, "--out", str(tmp_path / "missing" / "r.json")))
    assert "--out" in line and "does not exist" in line
    line = one_line_exit_2(invoke(env, *sim, "--plot", str(blocker / "p.png")))
    assert "--plot" in line


def test_an_unknown_database_driver_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    line = one_line_exit_2(invoke(env, "db", "upgrade", "--database-url", "foo://x"))
    assert "database_url: no driver for 'foo'" in line
    line = one_line_exit_2(
        invoke(env, "serve", "--database-url", "foo://x", "--home", str(tmp_path / "h"))
    )
    assert "database_url: no driver for 'foo'" in line


def test_simulate_out_also_prints_the_summary(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code, stdout, _ = invoke(
        env, "simulate", "--trace", str(GB_TRACE), "--workload", str(WORKLOAD), "--out", str(out)
    )
    assert code == 0 and out.is_file()
    assert "kgCO2 vs" in stdout and "% saved" in stdout and f"written to {out}" in stdout


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def test_every_option_is_described_and_says_its_default() -> None:
    undescribed, silent = [], []
    for name, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            text = param.help or ""
            if not text:
                undescribed.append(f"{name} {param.opts[0]}")
            elif param.default is None and not param.required and "default" not in text:
                silent.append(f"{name} {param.opts[0]}")  # its fallback must be said in words
    assert undescribed == [] and silent == []


def test_help_shows_defaults(env: dict[str, str]) -> None:
    code, out, _ = invoke({**env, "COLUMNS": "200"}, "jobs", "--help")
    assert code == 0 and "[default: 50]" in out and "GREENAI_API_URL" in out
    code, out, _ = invoke({**env, "COLUMNS": "200"}, "serve", "--help")
    assert "(default: GREENAI_API_PORT, else 8787)" in out
