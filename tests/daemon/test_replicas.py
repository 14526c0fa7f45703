"""Two real daemons on one PostgreSQL and one host's GPUs, one SIGKILLed mid-way: no job runs
twice, no two jobs share a GPU at once, and the survivor adopts the dead one's runs and finishes
the queue. `docs/reliability.md` ("Replicas")."""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from greenai.storage.database import make_engine
from tests.daemon.helpers import benchmark, crash_harness

FINAL = {"succeeded", "failed", "cancelled", "expired"}


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_daemons_share_the_gpus_and_the_survivor_finishes_the_dead_ones_work(
    postgres_url: str, tmp_path: Path
) -> None:
    h = crash_harness()
    marker = tmp_path / "markers.txt"
    homes = [tmp_path / "a" / "home", tmp_path / "b" / "home"]
    for home in homes:
        home.mkdir(parents=True)
    daemons = [h.Daemon(home, 2, database_url=postgres_url) for home in homes]
    for daemon in daemons:
        daemon.start()
    try:
        long_job = _submit_long_job(daemons[0].url, h.TOKEN)
        jobs = h.submit_all(daemons[0], 40, marker)
        busy = _the_daemon_running(postgres_url, daemons, long_job)
        survivor = daemons[1 - daemons.index(busy)]
        busy.kill()
        states = _wait_until_final(survivor.url, h.TOKEN, [*jobs, long_job])
        adopted = _adopted(survivor.url, h.TOKEN, [*jobs, long_job])
        attempts = _job(survivor.url, h.TOKEN, long_job)["attempts"]
    finally:
        for daemon in daemons:
            daemon.kill()
    assert Counter(states.values()) == {"succeeded": 41}
    assert long_job in adopted and attempts == 1  # taken over, not run again
    runs, by_gpu = h.read_markers(marker)
    assert sorted(runs) == sorted(jobs) and all(len(spans) == 1 for spans in runs.values())
    assert all(h._overlaps(spans) == 0 for spans in by_gpu.values())
    assert set(by_gpu) <= {"0", "1"}
    rows = [row for home in homes for row in _evidence(home)]
    assert sorted(row["job_id"] for row in rows) == sorted([*jobs, long_job])  # one row each
    assert len({row["run_id"] for row in rows}) == 41


def _submit_long_job(url: str, token: str) -> str:
    body = {"command": [sys.executable, "-c", "import time; time.sleep(4)"], "duration": 5}
    headers = {"Authorization": f"Bearer {token}"}
    return str(httpx.post(f"{url}/jobs", json=body, headers=headers, timeout=10).json()["id"])


def _job(url: str, token: str, job_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    answer: dict[str, Any] = httpx.get(f"{url}/jobs/{job_id}", headers=headers, timeout=10).json()
    return answer


def _the_daemon_running(url: str, daemons: list[Any], job_id: str) -> Any:
    """The daemon process whose instance runs ``job_id``: the parent of the instance's pid,
    its loop process."""
    engine = make_engine(url)
    query = (
        "SELECT instances.pid FROM jobs JOIN instances ON jobs.instance_id = instances.id "
        "WHERE jobs.state = 'running' AND jobs.id = %(id)s"
    )
    deadline = time.monotonic() + 60
    try:
        while True:
            with engine.connect() as connection:
                loops = {row[0] for row in connection.exec_driver_sql(query, {"id": job_id})}
            pids = {benchmark("replica_harness").parent_pid(pid) for pid in loops}
            busy = [d for d in daemons if d.process is not None and d.process.pid in pids]
            if busy:
                return busy[0]
            assert time.monotonic() < deadline, "the long job never ran"
            time.sleep(0.05)
    finally:
        engine.dispose()


def _wait_until_final(url: str, token: str, jobs: list[str]) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 180
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        while True:
            states = {job: client.get(f"/jobs/{job}").json()["state"] for job in jobs}
            if set(states.values()) <= FINAL:
                return states
            assert time.monotonic() < deadline, Counter(states.values())
            time.sleep(0.5)


def _adopted(url: str, token: str, jobs: list[str]) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        return [
            job
            for job in jobs
            if any(
                e["action"] == "reattach" for e in client.get(f"/jobs/{job}").json()["decisions"]
            )
        ]


def _evidence(home: Path) -> list[dict[str, str]]:
    path = home / "evidence.csv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))
