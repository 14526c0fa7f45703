"""The pure parts of the kubernetes executor: names and labels that keep Kubernetes' rules
for any greenai job id, and outcomes read from recorded Job and pod answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from greenai.core.time import parse_time
from greenai.executors.base import Exited, Launch
from greenai.executors.job_manifest import (
    PodSpecOptions,
    build_job,
    deadline_seconds,
    is_ours,
    job_name,
    label_value,
)
from greenai.executors.job_status import Ending, ended, exited, pod_facts
from tests.executors.k8s_server import recorded

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
ids = st.text(min_size=1, max_size=120)


@given(ids, st.integers(1, 10_000), st.integers(0, 999))
def test_job_names_are_dns_labels_for_any_id(job_id: str, attempt: int, piece: int) -> None:
    name = job_name(job_id, attempt, piece)
    assert len(name) <= 63 and DNS_LABEL.fullmatch(name), name
    assert name.endswith(f"-{attempt}" + (f"-p{piece}" if piece else ""))
    assert name == job_name(job_id, attempt, piece)


@given(ids, ids)
def test_distinct_ids_get_distinct_names_and_labels(one: str, other: str) -> None:
    if one != other:
        assert job_name(one, 1) != job_name(other, 1)
        assert label_value(one) != label_value(other)


@given(ids)
def test_label_values_keep_the_rules_and_a_valid_id_is_kept_as_it_is(job_id: str) -> None:
    value = label_value(job_id)
    assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), value
    if LABEL_VALUE.fullmatch(job_id) and len(job_id) <= 63:
        assert value == job_id


def test_a_plain_id_names_its_job_plainly() -> None:
    assert job_name("3f2a9c0d1e4b", 2) == "greenai-3f2a9c0d1e4b-2"
    assert job_name("Train.v2", 1).startswith("greenai-train-v2-")  # changed: hashed


def test_the_deadline_is_the_sooner_limit_rounded_up() -> None:
    launch = Launch("j", 1, ("x",), 0, (), Path("/tmp/x"))
    assert deadline_seconds(launch, NOW) is None
    limited = Launch("j", 1, ("x",), 0, (), Path("/tmp/x"), max_runtime=timedelta(seconds=9.2))
    assert deadline_seconds(limited, NOW) == 10
    past = Launch("j", 1, ("x",), 0, (), Path("/tmp/x"), stop_at=NOW - timedelta(hours=1))
    assert deadline_seconds(past, NOW) == 1  # at once, never 0 (which the API refuses)


def test_a_job_is_ours_only_with_its_labels_and_raw_id() -> None:
    launch = Launch("Job A", 3, ("x",), 0, (), Path("/tmp/x"))
    body = build_job(launch, PodSpecOptions("img", 60), NOW)
    assert is_ours(body, "Job A", 3)
    assert not is_ours(body, "Job A", 2)
    assert not is_ours(body, "Job-A", 3)


def outcome(job_file: str, pods_file: str | None) -> Exited:
    pods = recorded(pods_file)["items"] if pods_file else []
    return exited(recorded(job_file), pod_facts(pods), Ending(gpus=2, argv0="python"), NOW)


def test_recorded_answers_read_as_outcomes() -> None:
    succeeded = outcome("job_succeeded.json", "pods_succeeded.json")
    assert (succeeded.exit_code, succeeded.signal, succeeded.limit) == (0, None, None)
    assert succeeded.started_at == parse_time("2026-12-03T17:40:08Z")  # the container's times
    assert succeeded.finished_at == parse_time("2026-12-03T17:52:29Z")
    failed = outcome("job_failed.json", "pods_failed.json")
    assert failed.exit_code == 3
    assert failed.notes == (
        "pod greenai-job-a-1-x7k2p on node gpu-node-3 with 2 GPU(s): not measured by greenai",
    )
    unknown = outcome("job_failed.json", None)
    assert unknown.exit_code == 1  # the Job's own times stand in for the pod's
    assert unknown.started_at == parse_time("2026-12-03T17:40:02Z")
    assert unknown.finished_at == parse_time("2026-12-03T17:44:10Z")
    missing = outcome("job_failed.json", "pods_start_error.json")
    assert missing.exit_code == 127 and missing.started_at.year == 2026  # not StartError's 1970


def test_only_complete_or_failed_jobs_have_ended() -> None:
    assert ended(recorded("job_running.json")) is None
    assert ended(recorded("job_deleting.json")) is None
    assert ended(recorded("job_created.json")) is None
    assert ended(recorded("job_deadline.json")) is not None
    assert pod_facts(recorded("pods_running.json")["items"]).exit_code is None
