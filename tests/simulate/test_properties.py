"""Properties on random traces and workloads (issue #3): every policy keeps every promise."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.core.domain import Job
from greenai.core.time import parse_time
from greenai.formats.traces import Trace
from greenai.simulate import SimulationSettings, simulate
from tests.simulate.helpers import make_job, make_trace

HORIZON_H = 12.0
POLICY_RUNS = [
    ("now", "perfect"),
    ("threshold", "perfect"),
    ("window", "perfect"),
    ("window", "noisy:0.3"),
    ("window", "persistence"),
    ("window-once", "perfect"),
    ("interruptible", "perfect"),
    ("interruptible", "noisy:0.3"),
    ("fleet", "perfect"),
    ("fleet", "noisy:0.3"),
]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Trace, list[Job]]:
    hours = draw(st.integers(30, 60))
    values = draw(st.lists(st.integers(0, 500), min_size=hours, max_size=hours))
    jobs = []
    for k in range(draw(st.integers(1, 6))):
        duration = draw(st.integers(1, 8 * 60))
        slack = draw(st.integers(0, 20 * 60))
        latest_submit = hours * 60 - duration - slack
        if latest_submit < 0:
            continue
        submit = draw(st.integers(0, latest_submit))
        flag = draw(st.booleans())
        jobs.append(make_job(f"j{k}", submit, duration, slack, draw(st.floats(0.1, 9)), flag))
    return make_trace([float(v) for v in values]), jobs


def run(trace: Trace, jobs: list[Job], policy: str, forecast: str) -> dict[str, Any]:
    return simulate(trace, jobs, SimulationSettings(policy, forecast, 7, HORIZON_H))


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_every_policy_keeps_windows_durations_and_totals(
    scenario: tuple[Trace, list[Job]],
) -> None:
    trace, jobs = scenario
    oracle = run(trace, jobs, "oracle", "perfect")
    best = {d["id"]: d["emissions_kg"] for d in oracle["jobs_detail"]}
    for policy, forecast in POLICY_RUNS:
        result = run(trace, jobs, policy, forecast)
        check_totals(result)
        for job, detail in zip(jobs, result["jobs_detail"], strict=True):
            check_job(job, detail)
            assert detail["emissions_kg"] >= best[job.id] - 1e-6, (policy, forecast, job.id)


def check_job(job: Job, detail: dict[str, Any]) -> None:
    pieces = [(parse_time(a), parse_time(b)) for a, b in detail["segments"]]
    assert not detail["late"], "without a capacity limit nothing is ever late"
    assert pieces[0][0] >= job.submitted_at and pieces[-1][1] <= job.deadline
    ran = sum((b - a).total_seconds() for a, b in pieces)
    assert abs(ran - job.duration.total_seconds()) < 1e-3
    if not job.interruptible or len(pieces) == 1:
        return
    assert all(earlier[1] < later[0] for earlier, later in pairwise(pieces))


def check_totals(result: dict[str, Any]) -> None:
    details = result["jobs_detail"]
    tolerance = 1e-5 * max(1, len(details))
    assert abs(result["emissions_kg"] - sum(d["emissions_kg"] for d in details)) < tolerance
    assert abs(result["baseline_emissions_kg"] - sum(d["baseline_kg"] for d in details)) < tolerance
    assert result["sla_violations"] == sum(d["late"] for d in details)
    assert result["jobs"] == len(details)


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_window_under_perfect_equals_the_oracle_when_the_slack_fits_the_horizon(
    scenario: tuple[Trace, list[Job]],
) -> None:
    trace, jobs = scenario
    whole = [
        Job(j.id, j.submitted_at, j.duration, j.deadline, power_kw=j.power_kw)
        for j in jobs
        if (j.deadline - j.submitted_at).total_seconds() <= HORIZON_H * 3600
    ]
    window = run(trace, whole, "window", "perfect")["jobs_detail"]
    oracle = run(trace, whole, "oracle", "perfect")["jobs_detail"]
    for mine, best in zip(window, oracle, strict=True):
        assert abs(mine["emissions_kg"] - best["emissions_kg"]) < 1e-6


@settings(max_examples=40, deadline=None)
@given(scenarios(), st.integers(1, 3))
def test_capacity_is_never_exceeded(scenario: tuple[Trace, list[Job]], capacity: int) -> None:
    trace, jobs = scenario
    for policy in ("now", "window", "interruptible", "fleet"):
        result = simulate(trace, jobs, SimulationSettings(policy, capacity=capacity))
        check_totals(result)
        edges = []
        for detail in result["jobs_detail"]:
            for a, b in detail["segments"]:
                edges += [(parse_time(a), 1), (parse_time(b), -1)]
        running = 0
        for _, change in sorted(edges, key=lambda e: (e[0], e[1])):
            running += change
            assert running <= capacity
