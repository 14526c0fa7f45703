"""The example DAGs on real Airflow 3 (`airflow dags test`) with greenai's trace clock.

The green-window sensor decides with greenai's own window policy on a trace whose only clean
hours are 02:00-04:00, defers (the task leaves its worker slot: DEFERRED) and resumes when
greenai's clock reaches 02:00. The submit operator hands jobs to a real daemon, defers on its
trigger, and ends as the job ends: a job whose command exits 1 fails the task. Clearing the
deferred task (Airflow's triggerer cancelling the trigger for a user's action) cancels the job."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from greenai.core.time import parse_time
from tests.airflow.conftest import (
    CLEAN_HOUR,
    SPEED,
    TOKEN,
    TRACE_START,
    Airflow,
    Daemon,
    write_trace,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def xcoms(home: Path, dag_id: str, task_id: str) -> dict[str, Any]:
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "SELECT key, value FROM xcom WHERE dag_id = ? AND task_id = ?", (dag_id, task_id)
        ).fetchall()
    return {key: json.loads(value) for key, value in rows}


def task_states(home: Path, dag_id: str) -> dict[str, str]:
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ?", (dag_id,)
        ).fetchall()
    return dict(rows)


def sensor_env(trace: Path) -> dict[str, str]:
    return {
        "GREENAI_PROVIDER": f"trace:{trace}",
        "GREENAI_TRACE_START": f"{TRACE_START:%Y-%m-%dT%H:%M:%SZ}",
        "GREENAI_TRACE_SPEED": str(SPEED),
    }


def test_the_sensor_defers_to_the_green_window_and_resumes_at_its_start(
    airflow: Airflow, tmp_path: Path
) -> None:
    trace = write_trace(tmp_path / "trace.csv", low={2, 3})
    run = airflow.dags_test("greenai_green_window", "2030-01-01", sensor_env(trace))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert task_states(airflow.home, "greenai_green_window") == {
        "wait_for_green_window": "success",
        "train": "success",
    }
    assert "Pausing task as DEFERRED" in output  # the worker slot was given back
    assert "green start reached: 2030-01-01T02:00:00Z" in output  # the trigger fired
    found = xcoms(airflow.home, "greenai_green_window", "wait_for_green_window")
    decision = found["green_decision"]["decision"]
    assert decision["action"] == "defer" and decision["policy"] == "window"
    assert decision["provider"] == "trace" and decision["signal"] == "average"
    assert decision["fallback"] is None and decision["forecast_intensity"] == 50.0
    planned = parse_time(decision["planned_start"])
    assert planned == TRACE_START + timedelta(hours=2)
    # 2 h of trace time at 1800x is 4 s on the wall, less what deciding took
    wait = found["green_decision"]
    assert 3.0 < wait["wall_wait_s"] <= 4.0
    assert wait["wall_wait_s"] == pytest.approx(wait["wait_s"] / SPEED)
    resumed = parse_time(found["green_resumed_at"])
    assert planned <= resumed < planned + timedelta(hours=1)  # < 2 s on the wall late
    assert found["return_value"]["resumed_at"] == found["green_resumed_at"]
    train = xcoms(airflow.home, "greenai_green_window", "train")["return_value"]
    assert train == f"training at greenai time {found['green_resumed_at']}"


def test_the_sensor_starts_at_once_when_the_grid_is_already_clean(
    airflow: Airflow, tmp_path: Path
) -> None:
    trace = write_trace(tmp_path / "trace.csv", low=set(range(72)))
    run = airflow.dags_test("greenai_green_window", "2030-01-02", sensor_env(trace))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert "Pausing task as DEFERRED" not in output
    found = xcoms(airflow.home, "greenai_green_window", "wait_for_green_window")
    assert found["green_decision"]["decision"]["action"] == "start"
    assert found["green_decision"]["wall_wait_s"] == 0.0


def job_of(daemon: Daemon, job_id: str) -> dict[str, Any]:
    with daemon.client() as client:
        response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_submit_operator_waits_for_the_daemons_green_window_and_succeeds(
    airflow: Airflow, daemon: Daemon
) -> None:
    conf = json.dumps({"script": "echo trained", "max_delay": "36h"})
    run = airflow.dags_test("greenai_submit", "2030-01-01", daemon.connection(), conf)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert task_states(airflow.home, "greenai_submit") == {"train": "success"}
    assert "Pausing task as DEFERRED" in output
    found = xcoms(airflow.home, "greenai_submit", "train")
    job = job_of(daemon, found["greenai_job_id"])
    assert job["state"] == "succeeded" and job["command"] == ["sh", "-c", "echo trained"]
    assert found["greenai_job"]["state"] == "succeeded"
    assert found["greenai_job"]["exit_code"] == 0
    # the daemon deferred the job into the clean hours and ran it there
    defer = next(d for d in job["decisions"] if d["action"] == "defer")
    planned = parse_time(defer["payload"]["planned_start"])
    assert planned == TRACE_START + timedelta(hours=CLEAN_HOUR)
    started = parse_time(job["started_at"])
    assert planned <= started < planned + timedelta(hours=1)  # a tick: < 2 s on the wall
    assert parse_time(found["greenai_job"]["finished_at"]) >= started
    assert TOKEN not in output and TOKEN not in json.dumps(found)


def test_a_job_that_exits_1_fails_the_task(airflow: Airflow, daemon: Daemon) -> None:
    conf = json.dumps({"script": "exit 1", "max_delay": "1h"})  # no clean hour: runs now
    run = airflow.dags_test("greenai_submit", "2030-01-01", daemon.connection(), conf)
    output = run.stdout + run.stderr
    assert task_states(airflow.home, "greenai_submit") == {"train": "failed"}, output[-5000:]
    found = xcoms(airflow.home, "greenai_submit", "train")
    assert found["greenai_job"]["state"] == "failed"
    assert found["greenai_job"]["exit_code"] == 1
    assert job_of(daemon, found["greenai_job_id"])["state"] == "failed"
    assert "return_value" not in found
    assert f"greenai job {found['greenai_job_id']} failed (exit code 1)" in output
    assert TOKEN not in output


KILL = """
import asyncio, json, os
from airflow.jobs.triggerer_job_runner import TriggerRunner
from greenai.integrations.airflow import GreenaiJobTrigger, GreenaiSubmitOperator

trigger = GreenaiJobTrigger("greenai_default", os.environ["JOB_A"], poll_interval=0.2)
assert os.environ["TOKEN"] not in json.dumps(trigger.serialize())
trigger.task_instance = None

async def clear_while_deferred():
    # Airflow's own triggerer loop: a user's clear or mark puts the trigger in to_cancel
    runner = TriggerRunner()
    task = asyncio.create_task(runner.run_trigger(1, trigger))
    runner.triggers[1] = {"task": task, "is_watcher": False, "name": "greenai", "events": 0}
    await asyncio.sleep(1.0)
    assert not task.done() and not runner.events  # the job waits for its window: no event
    runner.to_cancel.append(1)
    await runner.cancel_triggers()
    [ended] = await asyncio.gather(task, return_exceptions=True)
    assert isinstance(ended, asyncio.CancelledError), ended  # cancelled, after on_kill

asyncio.run(clear_while_deferred())
operator = GreenaiSubmitOperator(task_id="t", command=["true"], duration="1h")
operator._job_id = os.environ["JOB_B"]
operator.on_kill()  # killed before it deferred
print("killed")
"""


def test_killing_the_task_cancels_its_job(airflow: Airflow, daemon: Daemon) -> None:
    # a threshold under every value of the trace: the jobs wait (20 trace hours: 40 s wall)
    body = {"command": ["sleep", "600"], "duration": "1h", "max_delay": "20h",
            "policy": "threshold", "threshold": 10}  # fmt: skip
    with daemon.client() as client:
        ids = [client.post("/jobs", json=body).json()["id"] for _ in range(2)]
    env = {**daemon.connection(), "JOB_A": ids[0], "JOB_B": ids[1], "TOKEN": TOKEN}
    run = airflow.python(KILL, env)
    assert run.returncode == 0 and "killed" in run.stdout, run.stdout + run.stderr
    for job_id in ids:
        job = job_of(daemon, job_id)
        assert job["state"] == "cancelled", job
        assert job["started_at"] is None
