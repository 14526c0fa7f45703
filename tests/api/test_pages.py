"""The dashboard's files, the offline /docs and /redoc, and /summary, over a real uvicorn.
(In a browser: test_dashboard.py.)"""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from pydantic import SecretStr

from greenai.api.dashboard import STATIC_DIR
from greenai.core.domain import JobState
from greenai.scheduling.config import EngineStats
from tests.api.conftest import AUTH, JOB, TOKEN, Serve
from tests.daemon.helpers import T0


def test_the_dashboard_and_every_file_it_names_are_served_without_a_token(serve: Serve) -> None:
    client, _ = serve(token=SecretStr(TOKEN))
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    named = re.findall(r'(?:src|href)="(/static/dashboard/[^"]+)"', page.text)
    imported = {
        f"/static/dashboard/{name}"
        for script in STATIC_DIR.glob("*.js")
        for name in re.findall(r'from "\./([^"]+)"', script.read_text())
    }
    assert len(named) == 2 and imported
    for path in {*named, *imported}:
        assert client.get(path).status_code == 200, path
    assert not re.search(r"https?://", page.text)


def test_docs_load_their_scripts_from_the_daemon(serve: Serve) -> None:
    client, _ = serve()
    html = client.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
    assert len(assets) == 3
    for asset in assets:
        assert asset.startswith("/static/docs/"), asset
        assert client.get(asset).status_code == 200, asset
    assert "cdn" not in html.lower() and '"validatorUrl": null' in html
    assert client.get("/openapi.json").json()["info"]["title"] == "greenai"
    assert client.get("/redoc").status_code == 404  # FastAPI's ReDoc page needs a CDN


class Stats:
    """An engine view whose counters say the provider fell back once and the loop ticked."""

    def __init__(self) -> None:
        self.stats = EngineStats(ticks=3, provider_errors=2, fallbacks=1, last_tick_at=T0)

    def forecast(self, spec: str | None = None) -> None:
        return None


def test_summary_counts_jobs_and_reports_the_loop_without_a_token(serve: Serve) -> None:
    client, _ = serve(
        token=SecretStr(TOKEN), engine=Stats(), default_threshold=150.0, tick_every=timedelta(1)
    )
    assert client.post("/jobs", json=JOB, headers=AUTH).status_code == 201
    summary = client.get("/summary").json()
    assert summary["now"].startswith(T0.isoformat()[:19])
    assert summary["threshold"] == 150.0 and summary["policy"] == "window"
    counts = {s["state"]: (s["count"], s["final"]) for s in summary["states"]}
    assert set(counts) == {str(state) for state in JobState}
    assert counts["queued"] == (1, False) and counts["succeeded"] == (0, True)
    assert summary["totals"] == {
        "runs": 0, "energy_kwh": 0.0, "operational_g": 0.0, "saved_g": 0.0, "deferral_s": 0.0
    }  # fmt: skip
    loop = summary["loop"]
    assert (loop["ticks"], loop["provider_errors"], loop["fallbacks"]) == (3, 2, 1)
    assert loop["problems"] == []


def test_the_pages_keep_the_host_check(serve: Serve) -> None:
    _, server = serve(allowed_hosts=("127.0.0.1",))
    for path in ("/", "/docs", "/static/dashboard/dashboard.js", "/summary"):
        foreign = httpx.get(server.url + path, headers={"Host": "rebound.example"})
        assert foreign.status_code == 400, path
