"""The daemon's clients as a person uses them (issue 12): `--url` and `--token`, errors that say
what to do with one exit code, `jobs` in 80 columns, id prefixes, `submit` saying when and why,
and `status` on one screen. A real daemon (in-process, a fake forecast) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from greenai.cli import app
from greenai.core.settings import load_settings
from greenai.daemon import Daemon
from tests.daemon.conftest import free_port
from tests.daemon.helpers import FakeSource, forecast

TOKEN = "tok-clients-123"
EXIT_DAEMON = 6
LONG = ["--name", "a-very-long-training-job-name", "--project", "natural-language-group"]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon whose forecast is dirty for two hours, then clean: window jobs wait."""
    settings = load_settings(
        env={"GREENAI_CONFIG": str(tmp_path / "absent.toml")}, home=tmp_path / "home",
        api_port=free_port(), tick_seconds=0.1, policy="window", api_token=TOKEN,
        meters="estimate", power_watts=300,
    )  # fmt: skip
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    source = FakeSource(forecast([400.0] * 6 + [50.0] * 90, start=hour - timedelta(hours=1)))
    running = Daemon(settings, source_for=lambda spec: source)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No URL or token from the environment: each test gives them as flags."""
    return {"GREENAI_CONFIG": str(tmp_path / "absent.toml"), "COLUMNS": "80"}


def invoke(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def client(daemon: Daemon, token: str = TOKEN) -> list[str]:
    return ["--url", daemon.url, "--token", token]


def submit(env: dict[str, str], daemon: Daemon, *args: str) -> str:
    code, out, err = invoke(
        env, "submit", "--duration", "1h", "--max-delay", "12h", *client(daemon), *args,
        "--", "true",
    )  # fmt: skip
    assert code == 0, err
    return out


def test_submit_says_when_the_job_is_planned_and_why(env: dict[str, str], daemon: Daemon) -> None:
    out = submit(env, daemon, "--name", "train")
    assert out.startswith("job ") and "(train) planned for " in out
    assert "window" in out or "mean" in out  # the plan's reason, as the daemon gave it
    assert TOKEN not in out


def test_submit_sends_the_jobs_own_draw_for_its_budget(env: dict[str, str], daemon: Daemon) -> None:
    submit(env, daemon, "--name", "heavy", "--power-kw", "2.5", "--wait", "0")
    [job] = [j for j in daemon.store.list_jobs(None, None, 10, 0)[0] if j.job.name == "heavy"]
    assert job.job.power_kw == 2.5


def test_the_token_comes_from_the_environment_and_a_401_says_where(
    env: dict[str, str], daemon: Daemon
) -> None:
    code, out, _ = invoke(
        {**env, "GREENAI_API_URL": daemon.url, "GREENAI_API_TOKEN": TOKEN}, "jobs"
    )
    assert code == 0 and "jobs (0 of 0)" in out
    code, out, err = invoke(env, "jobs", *client(daemon, "not-the-token"))
    assert code == EXIT_DAEMON
    assert "GREENAI_API_TOKEN" in err and "--token" in err and "401" in err
    assert "not-the-token" not in out + err


def test_an_unreachable_daemon_names_the_url_and_how_to_change_it(env: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = invoke(env, "status", "--url", url)
    assert code == EXIT_DAEMON
    assert f"cannot reach the daemon at {url}" in err and "GREENAI_API_URL" in err


def test_jobs_fit_80_columns_and_wide_shows_everything(env: dict[str, str], daemon: Daemon) -> None:
    for _ in range(3):
        submit(env, daemon, *LONG, "--wait", "0")
    code, out, _ = invoke(env, "jobs", *client(daemon))
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    with _api(daemon) as api:
        full_ids = [job["id"] for job in api.get("/jobs").json()["items"]]
    assert all(f"{i[:8]} " in out and i not in out for i in full_ids)
    assert "." not in out.replace("…", "")  # no microseconds (nor any fraction)
    code, wide, _ = invoke(env, "jobs", "--wide", *client(daemon))
    assert code == 0 and all(i in wide for i in full_ids)
    assert "natural-language-group" in wide


def test_a_unique_prefix_works_wherever_an_id_does(env: dict[str, str], daemon: Daemon) -> None:
    submit(env, daemon, "--wait", "0")
    with _api(daemon) as api:
        [job] = api.get("/jobs").json()["items"]
    code, out, _ = invoke(env, "job", job["id"][:6], *client(daemon))
    assert code == 0 and f"job {job['id']}" in out
    code, out, _ = invoke(env, "cancel", job["id"][:6], *client(daemon))
    assert code == 0 and out.strip() == f"job {job['id']} cancelled"
    code, _, err = invoke(env, "job", "zzz", *client(daemon))
    assert code == EXIT_DAEMON and "job zzz not found" in err


def test_an_ambiguous_prefix_is_a_409_naming_the_candidates(
    env: dict[str, str], daemon: Daemon
) -> None:
    with _api(daemon) as api:
        for _ in range(17):  # 17 ids over 16 hex digits: two share their first character
            api.post("/jobs", json={"command": ["true"], "duration": "1h", "max_delay": "12h"})
        ids = [job["id"] for job in api.get("/jobs", params={"limit": 100}).json()["items"]]
        shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
        answer = api.get(f"/jobs/{shared}")
    assert answer.status_code == 409
    candidates = [i for i in ids if i.startswith(shared)]
    assert all(i in answer.json()["detail"] for i in candidates[:5])
    code, _, err = invoke(env, "cancel", shared, *client(daemon))
    assert code == EXIT_DAEMON and "fits several jobs" in err


def test_impossible_submissions_are_refused_with_the_flag_named(
    env: dict[str, str], daemon: Daemon
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    code, _, err = invoke(
        env, "submit", "--duration", "2h", "--deadline", soon, *client(daemon), "--", "true"
    )
    assert (
        code == 2 and "--duration is longer than the " in err and "left before the deadline" in err
    )
    code, _, err = invoke(
        env, "submit", "--duration", "1h", "--policy", "threshold", *client(daemon), "--", "true"
    )
    assert code == 2 and "--threshold is needed by the threshold policy" in err


def test_status_shows_the_queue_running_jobs_savings_and_provider(
    env: dict[str, str], daemon: Daemon
) -> None:
    submit(env, daemon, "--name", "waits")
    code, out, _ = invoke(env, "status", *client(daemon))
    assert code == 0
    assert out.startswith("daemon ok") or out.startswith("daemon degraded")
    assert "queue" in out and "scheduled" in out
    assert "running: none" in out
    assert "gCO2 saved" in out
    assert "provider: " in out and "gCO2/kWh now" in out


def test_version_comes_from_the_package(env: dict[str, str]) -> None:
    from importlib.metadata import version

    code, out, _ = invoke(env, "--version")
    assert code == 0 and out.strip() == f"greenai {version('greenai')}"


def _api(daemon: Daemon) -> httpx.Client:
    return httpx.Client(base_url=daemon.url, headers={"Authorization": f"Bearer {TOKEN}"})
