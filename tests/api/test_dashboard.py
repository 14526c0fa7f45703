"""The dashboard and /docs in real headless Chromium (Debian's, driven by Playwright) against a
real ``greenai serve`` on 127.0.0.1: a temporary home, a trace provider written around now,
and seeded jobs (two finished, one running, three planned). One daemon and one browser serve
the module; every request the page makes beyond 127.0.0.1 is refused and recorded, so a page
that needs the internet fails here."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright
from pydantic import SecretStr

from tests.api.browser import FLAGS, chromium_executable
from tests.api.conftest import JOB, Serve
from tests.daemon.conftest import free_port

TOKEN = "dashboard-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
THRESHOLD = 180.0


def write_trace(path: Path, now: datetime) -> None:
    """Hourly intensity from 12 h ago to 60 h ahead: a daily swing with its low ~10 h ahead."""
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=12)
    rows = ["timestamp,average_intensity"]
    for hour in range(72):
        at = first + timedelta(hours=hour)
        value = 230 + 110 * math.cos(2 * math.pi * (hour - 12 - 10) / 24 + math.pi)
        rows.append(f"{at:%Y-%m-%dT%H:%M:%SZ},{value:.1f}")
    path.write_text("\n".join(rows) + "\n")


@dataclass
class Daemon:
    url: str
    process: subprocess.Popen[bytes]
    jobs: dict[str, str] = field(default_factory=dict)  # name -> id

    def get(self, path: str) -> Any:
        response = httpx.get(self.url + path, headers=AUTH, timeout=10)
        response.raise_for_status()
        return response.json()

    def submit(self, name: str, **body: Any) -> str:
        body = {"name": name, "command": [sys.executable, "-c", "pass"], **body}
        response = httpx.post(self.url + "/jobs", json=body, headers=AUTH, timeout=10)
        assert response.status_code == 201, response.text
        self.jobs[name] = response.json()["id"]
        return self.jobs[name]

    def state(self, name: str) -> str:
        return str(self.get(f"/jobs/{self.jobs[name]}")["state"])


def wait_until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)
    return result


def _env(home: Path, trace: Path, port: int, now: datetime) -> dict[str, str]:
    return {
        **os.environ,
        "GREENAI_HOME": str(home),
        "GREENAI_API_PORT": str(port),
        "GREENAI_API_TOKEN": TOKEN,
        "GREENAI_PUBLIC_READ": "1",
        "GREENAI_PROVIDER": f"trace:{trace}",
        "GREENAI_TRACE_START": now.isoformat(),  # a daemon on the trace's clock keeps wall time
        "GREENAI_POLICY": "window",
        "GREENAI_THRESHOLD": str(THRESHOLD),
        "GREENAI_TICK_SECONDS": "0.3",
        "GREENAI_GPU_SLOTS": "2",
        "GREENAI_METERS": "estimate",
        "GREENAI_POWER_WATTS": "350",
        "GREENAI_GRACE_SECONDS": "0",
    }


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("dashboard")
    trace = root / "trace.csv"
    now = datetime.now(UTC)
    write_trace(trace, now)
    port = free_port()
    log = (root / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "greenai", "serve"],
        env=_env(root / "home", trace, port, now),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    served = Daemon(f"http://127.0.0.1:{port}", process)
    try:
        wait_until(lambda: _answers(served) or process.poll() is not None)
        assert process.poll() is None, (root / "serve.log").read_text()
        _seed(served)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _answers(daemon: Daemon) -> bool:
    try:
        return httpx.get(daemon.url + "/intensity", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _seed(daemon: Daemon) -> None:
    """Two finished runs, then one running and three planned into the trace's low."""
    for name in ("warm-up", "smoke-test"):
        daemon.submit(name, duration=60, flexible=False, project="ops")
        wait_until(lambda name=name: daemon.state(name) == "succeeded")
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    daemon.submit("train-llm", command=sleeper, duration="2h", flexible=False, project="nlp")
    daemon.submit("eval-sweep", duration="2h", max_delay="30h", project="vision", gpus=2)
    daemon.submit("nightly-report", duration="1h", max_delay="20h", project="nlp")
    daemon.submit("cancel-me", duration="30m", max_delay="24h", project="ops")
    wait_until(lambda: daemon.state("train-llm") == "running")
    wait_until(lambda: len(daemon.get("/plan")) == 3)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        yield _launch(playwright)


def _launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=chromium_executable(), headless=True, args=list(FLAGS)
    )


@contextmanager
def only_to(browser: Browser, url: str) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) that may reach ``url`` and nothing else; it fails
    on any request beyond it and any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def only_the_daemon(route: Route) -> None:
        if route.request.url.startswith((url + "/", "data:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_daemon)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert outside == [], f"the page asked beyond the daemon: {outside}"
    assert errors == [], f"script errors: {errors}"


@pytest.fixture
def page(browser: Browser, daemon: Daemon) -> Iterator[Page]:
    with only_to(browser, daemon.url) as tab:
        yield tab


def _row(page: Page, table: str, name: str) -> Any:
    return page.locator(f"#{table} tbody tr", has_text=name)


def test_the_dashboard_shows_the_forecast_the_plan_and_the_tables(
    page: Page, daemon: Daemon, tmp_path: Path
) -> None:
    page.goto(daemon.url + "/")
    expect(page.locator("#queue tbody tr[data-job-id]")).to_have_count(3)
    for name in ("eval-sweep", "nightly-report", "cancel-me"):
        expect(_row(page, "queue", name)).to_contain_text("scheduled")
    expect(_row(page, "running", "train-llm")).to_contain_text("nlp")
    expect(page.locator("#history tbody tr[data-job-id]")).to_have_count(2)
    smoke = _row(page, "history", "smoke-test")
    expect(smoke).to_contain_text("succeeded")
    [run] = daemon.get(f"/jobs/{daemon.jobs['smoke-test']}")["evidence"]
    shown = float(smoke.locator("td").nth(8).inner_text())  # gCO2, 3 significant digits
    assert shown == pytest.approx(run["operational_g"], rel=0.01)

    chart = page.locator("#chart svg")
    expect(chart.locator(".forecast-line")).to_have_count(1)
    expect(chart.locator(".threshold text")).to_have_text(f"threshold {THRESHOLD:g}")
    expect(chart.locator(".job-bar.planned")).to_have_count(3)
    expect(chart.locator(".job-bar.running")).to_have_count(1)
    expect(chart.locator(".job-bar.past")).to_have_count(2)
    expect(chart.locator(".span.past").first).to_have_attribute("fill", _hsl())
    expect(page.locator("#provider")).to_contain_text("trace")
    expect(page.locator("#budgets-card")).to_be_hidden()

    planned = chart.locator(f'.job-bar[data-job-id="{daemon.jobs["eval-sweep"]}"]')
    planned.hover()
    tip = page.locator("#tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("eval-sweep (scheduled)")
    reason = daemon.get(f"/jobs/{daemon.jobs['eval-sweep']}")["decisions"][-1]["reason"]
    expect(tip.locator(".tip-reason")).to_contain_text(reason[:40])
    _keep_screenshot(page, tmp_path, "dashboard.png")  # with the tooltip showing
    page.mouse.move(0, 0)
    expect(tip).to_be_hidden()
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the chart is redrawn
    expect(chart).to_have_attribute("width", re.compile(r"^3\d\d$"))
    box = _row(page, "queue", "cancel-me").get_by_role("button", name="Cancel").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390  # no sideways scrolling to act
    _keep_screenshot(page, tmp_path, "dashboard-phone.png")


def _hsl() -> re.Pattern[str]:
    return re.compile(r"^hsl\(\d+, 62%, 44%\)$")


def _keep_screenshot(page: Page, tmp_path: Path, name: str) -> None:
    """Saved in the test's folder, and copied to artifacts/ for a person to look at."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)


def test_cancel_asks_for_the_token_and_is_refused_without_the_right_one(
    page: Page, daemon: Daemon
) -> None:
    page.goto(daemon.url + "/")
    button = _row(page, "queue", "cancel-me").get_by_role("button", name="Cancel")
    dialog = page.locator("#token-dialog")

    button.click()  # no token in this tab: asked for one; dismissed, nothing is sent
    expect(dialog).to_be_visible()
    page.locator("#token-cancel").click()
    expect(page.locator("#banner")).to_contain_text("cancel-me not cancelled: no token given")

    button.click()
    page.locator("#token-input").fill("not-the-token")
    page.locator("#token-ok").click()
    expect(page.locator("#banner")).to_contain_text("refused: missing or wrong bearer token")
    assert daemon.state("cancel-me") == "scheduled"
    assert page.evaluate("sessionStorage.getItem('greenai.token')") is None

    button.click()
    page.locator("#token-input").fill(TOKEN)
    page.locator("#token-ok").click()
    expect(page.locator("#banner")).to_contain_text("cancel-me: cancelled")
    expect(_row(page, "queue", "cancel-me")).to_have_count(0)
    expect(_row(page, "history", "cancel-me")).to_contain_text("cancelled")
    assert daemon.state("cancel-me") == "cancelled"
    assert TOKEN not in page.url


def test_a_job_submitted_from_the_page_is_queued_with_the_token(page: Page, daemon: Daemon) -> None:
    page.goto(daemon.url + "/")
    page.locator("#submit-name").fill("from-the-page")
    page.locator("#submit-command").fill("python -c pass")
    page.locator("#submit-duration").fill("2h")
    page.locator("#submit-delay").fill("0s")  # too short for 2 h before the deadline: refused
    page.locator("#submit-button").click()
    page.locator("#token-input").fill(TOKEN)
    page.locator("#token-ok").click()
    expect(page.locator("#banner")).to_contain_text("not submitted: 422")
    page.locator("#submit-delay").fill("12h")
    page.locator("#submit-button").click()  # the tab has the token now: not asked again
    expect(page.locator("#banner")).to_contain_text("from-the-page: queued as ")
    expect(_row(page, "queue", "from-the-page")).to_have_count(1)
    [job] = [j for j in daemon.get("/jobs?limit=1000")["items"] if j["name"] == "from-the-page"]
    assert job["command"] == ["python", "-c", "pass"] and job["duration_s"] == 7200
    assert TOKEN not in page.url


def test_the_api_docs_render_with_no_internet(page: Page, daemon: Daemon) -> None:
    page.goto(daemon.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("greenai")
    expect(page.locator(".opblock-summary-path", has_text="/jobs/{job_id}/cancel")).to_have_count(1)


def test_a_daemon_with_private_reads_shows_its_jobs_once_given_the_token(
    browser: Browser, serve: Serve
) -> None:
    """Reads need the token by default: the page says so, asks, then shows the jobs; a daemon
    with no forecast yet draws an empty chart rather than failing; budgets show once a daemon
    has ``/budgets`` (none has yet: answered here by the browser)."""
    client, server = serve(token=SecretStr(TOKEN))
    assert client.post("/jobs", json={**JOB, "name": "private"}, headers=AUTH).status_code == 201
    budgets = [{"project": "nlp", "budget_g": 1000, "used_g": 12.5}]
    with only_to(browser, server.url) as tab:
        tab.route(server.url + "/budgets", lambda route: route.fulfill(json=budgets))
        tab.goto(server.url + "/")
        banner = tab.locator("#banner")
        expect(banner).to_contain_text("needs its token")
        expect(tab.locator("#chart-sub")).to_have_text("no forecast cached yet")
        banner.get_by_role("button", name="Enter token").click()
        tab.locator("#token-input").fill(TOKEN)
        tab.locator("#token-ok").click()
        expect(_row(tab, "queue", "private")).to_contain_text("queued")
        expect(banner).to_be_hidden()
        expect(tab.locator("#token-button")).to_have_text("Forget token")
        expect(tab.locator("#budgets tbody tr")).to_contain_text("nlp1,00012.5")
