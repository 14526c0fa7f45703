"""A real `greenai serve` with GREENAI_BUDGETS: the budget is stored at start and served, and
its loop process rejects a job whose estimate alone exceeds it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import httpx

from tests.daemon.helpers import python
from tests.daemon.test_daemon import TOKEN, serve_env, start_daemon, wait_until

__all__ = ["serve_env", "start_daemon"]  # the fixtures this module uses


def test_serve_stores_its_budgets_and_the_loop_admits_by_them(
    start_daemon: Callable[[], subprocess.Popen[str]], serve_env: dict[str, str]
) -> None:
    serve_env["GREENAI_BUDGETS"] = '{"tiny": {"kg": 0.001, "period": "1d"}}'  # 1 g a day
    url = f"http://127.0.0.1:{serve_env['GREENAI_API_PORT']}"
    start_daemon()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        [budget] = client.get("/budgets").json()
        assert (budget["project"], budget["kg"], budget["period"]) == ("tiny", 0.001, "1d")
        body = {"command": list(python("print(1)")), "duration": "1h", "project": "tiny"}
        job_id = client.post("/jobs", json=body).json()["id"]
        job = wait_until(
            lambda: (j := client.get(f"/jobs/{job_id}").json())["state"] != "queued" and j
        )
        assert job["state"] == "rejected", job
        [*_, decision] = job["decisions"]
        assert decision["action"] == "reject" and "budget of project tiny" in decision["reason"]
        metrics = client.get("/metrics").text
        assert 'greenai_budget_grams{project="tiny"} 1.0' in metrics
        assert 'greenai_jobs{state="rejected"} 1.0' in metrics
