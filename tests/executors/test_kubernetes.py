"""The Kubernetes executor against a loopback server answering with recorded API responses:
the Job it creates, how it reads outcomes, conflicts, permissions, cancels, re-attaching and
the watch stream."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.errors import ConfigError, ExecutorError
from greenai.core.time import parse_time
from greenai.executors.base import Exited, Handle, Lost, Running
from greenai.executors.job_manifest import job_name
from greenai.executors.kubernetes import REQUIRED_PERMISSIONS, Permission
from greenai.executors.kubernetes_config import KubernetesSettings
from tests.executors.k8s_helpers import IMAGE, KubeRuns
from tests.executors.k8s_server import recorded

SELECTOR = "app.kubernetes.io/managed-by=greenai,greenai.dev/job-id=job-a,greenai.dev/attempt=1"


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def test_submit_creates_a_job_with_labels_gpus_one_try_ttl_argv_and_limits(kube: KubeRuns) -> None:
    now = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
    executor = kube.executor(FixedClock(now), ttl_seconds=600, service_account="trainer",
                             image_pull_policy="Always")  # fmt: skip
    launch = kube.launch(
        "Job_A/7",
        ("python", "train.py", "--epochs", "3"),
        gpus=2,
        env={"DATASET": "s3://bucket/x", "GREENAI_API_TOKEN": "s3cret"},
        max_runtime=timedelta(hours=2),
        stop_at=now + timedelta(minutes=90, seconds=0.5),
        grace_s=45,
    )
    handle = executor.submit(launch)
    [create] = kube.fake.made("POST", "/jobs")
    body = create.body
    assert create.path == "/apis/batch/v1/namespaces/greenai/jobs"
    assert body["metadata"]["name"] == handle.ref["name"] == job_name("Job_A/7", 1)
    labels = body["metadata"]["labels"]
    assert labels["greenai.dev/attempt"] == "1"
    assert labels["greenai.dev/job-id"].startswith("Job_A-7-")  # sanitised, with a hash
    assert body["metadata"]["annotations"] == {"greenai.dev/job-id": "Job_A/7"}
    spec = body["spec"]
    assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"]) == (0, 600)
    assert spec["activeDeadlineSeconds"] == 90 * 60 + 1  # the deadline comes first, rounded up
    assert spec["template"]["metadata"]["labels"] == labels
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["terminationGracePeriodSeconds"]) == ("Never", 45)
    assert pod["serviceAccountName"] == "trainer"
    [container] = pod["containers"]
    assert container["image"] == IMAGE and container["imagePullPolicy"] == "Always"
    assert container["command"] == ["python", "train.py", "--epochs", "3"]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": "2"}}
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env == {"DATASET": "s3://bucket/x", "GREENAI_JOB_ID": "Job_A/7", "GREENAI_ATTEMPT": "1"}
    assert executor.poll(handle) == Running()


def test_a_job_without_gpus_or_limits_asks_for_neither(kube: KubeRuns) -> None:
    kube.executor().submit(kube.launch())
    [create] = kube.fake.made("POST", "/jobs")
    assert "activeDeadlineSeconds" not in create.body["spec"]
    assert "resources" not in create.body["spec"]["template"]["spec"]["containers"][0]


def test_a_succeeded_job_exits_0_with_its_containers_times_and_where_it_ran(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch(gpus=2))
    kube.fake.finish(handle.ref["name"], 0)
    status = executor.poll(handle)
    job = kube.fake.jobs[handle.ref["name"]]
    assert isinstance(status, Exited)
    assert (status.exit_code, status.signal, status.limit, status.reading) == (0, None, None, None)
    assert status.started_at == parse_time(job.started)
    assert status.finished_at == parse_time(str(job.finished))
    assert status.notes == (
        f"pod {handle.ref['name']}-x7k2p on node gpu-node-3 with 2 GPU(s): not measured by greenai",
    )
    [pods] = kube.fake.made("GET", "/pods")
    assert pods.query["labelSelector"] == f"job-name={handle.ref['name']}"


def test_a_failed_job_exits_with_its_containers_exit_code(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    kube.fake.finish(handle.ref["name"], 3)
    status = executor.poll(handle)
    assert isinstance(status, Exited) and status.exit_code == 3


def test_an_answer_once_given_stays_after_the_ttl_removed_the_job(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    kube.fake.finish(handle.ref["name"], 0)
    status = executor.poll(handle)
    del kube.fake.jobs[handle.ref["name"]]  # ttlSecondsAfterFinished passed
    assert kube.executor().attach(handle) == status


def test_a_failed_job_whose_pod_is_gone_exits_1_with_a_note(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    kube.fake.finish(handle.ref["name"], 3)
    kube.fake.jobs[handle.ref["name"]].body["metadata"]["labels"]["x"] = "y"  # pods not found
    kube.fake.render_pods = lambda job: recorded("pods_none.json")  # type: ignore[method-assign]
    status = executor.poll(handle)
    assert isinstance(status, Exited) and status.exit_code == 1
    assert status.notes[0].startswith("exit status unknown: the Job failed (BackoffLimitExceeded")
    assert "its pod on node an unknown node with 0 GPU(s)" in status.notes[1]


def test_a_job_past_its_active_deadline_fails_naming_the_limit(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch(max_runtime=timedelta(minutes=1)))
    job = kube.fake.jobs[handle.ref["name"]]
    job.phase, job.exit_code, job.finished = "deadline", 143, job.started
    status = executor.poll(handle)
    assert isinstance(status, Exited)
    assert (status.exit_code, status.signal) == (143, 15)
    assert status.limit == "stopped after its max runtime 0:01:00" == status.notes[0]


def test_a_command_missing_from_the_image_exits_127(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch(command=("/no/such/binary",)))
    status = executor.poll(handle)
    assert isinstance(status, Exited) and status.exit_code == 127
    assert status.notes[0].startswith("command not found: /no/such/binary (StartError: ")
    assert status.started_at.year == datetime.now(UTC).year  # not the epoch StartError reports


def test_a_job_that_was_never_created_or_was_deleted_is_lost(kube: KubeRuns) -> None:
    executor = kube.executor()
    never = executor.handle_for(kube.launch("job-b"))
    assert executor.poll(never) == Lost("never launched")
    handle = executor.submit(kube.launch())
    del kube.fake.jobs[handle.ref["name"]]  # someone ran kubectl delete
    status = executor.poll(handle)
    assert isinstance(status, Lost) and "is gone and nothing says how it ended" in status.reason
    [get] = [r for r in kube.fake.made("GET", "/jobs/") if r.path.endswith("job-b-1")]
    assert get.path == "/apis/batch/v1/namespaces/greenai/jobs/greenai-job-b-1"


def test_a_conflict_with_this_attempts_own_job_adopts_it(kube: KubeRuns, tmp_path: Path) -> None:
    first = kube.executor().submit(kube.launch())
    again = KubeRuns(kube.fake, tmp_path / "restarted").launch()  # a daemon without records
    restarted = kube.executor()
    handle = restarted.submit(again)
    assert handle.ref["name"] == first.ref["name"]
    assert [r.path for r in kube.fake.made("POST", "/jobs")] == [
        "/apis/batch/v1/namespaces/greenai/jobs"
    ] * 2
    assert restarted.poll(handle) == Running()
    kube.fake.finish(handle.ref["name"], 0)
    assert isinstance(restarted.poll(handle), Exited)


def test_a_conflict_with_another_jobs_job_is_refused(kube: KubeRuns, tmp_path: Path) -> None:
    kube.executor().submit(kube.launch())
    name = job_name("job-a", 1)
    kube.fake.jobs[name].body["metadata"]["annotations"] = {"greenai.dev/job-id": "other"}
    with pytest.raises(ExecutorError, match=f"a Job named {name} exists in namespace greenai"):
        kube.executor().submit(KubeRuns(kube.fake, tmp_path / "other").launch())


def test_forbidden_calls_name_the_missing_permission(kube: KubeRuns) -> None:
    kube.fake.forbidden.add(("create", "jobs"))
    with pytest.raises(ExecutorError) as raised:
        kube.executor().submit(kube.launch())
    message = str(raised.value)
    assert "the service account needs the RBAC permission 'create' on 'jobs'" in message
    assert "cannot create resource" in message  # the API's own words
    kube.fake.forbidden = {("list", "pods")}
    executor = kube.executor()
    handle = executor.submit(kube.launch("job-b"))
    kube.fake.finish(handle.ref["name"], 0)
    with pytest.raises(ExecutorError, match="needs the RBAC permission 'list' on 'pods'"):
        executor.poll(handle)


def test_a_create_whose_answer_was_lost_adopts_the_job_it_made(kube: KubeRuns) -> None:
    kube.fake.lost_answers.add(("create", "jobs"))
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    assert len(kube.fake.made("POST", "/jobs")) == 1
    assert executor.poll(handle) == Running()


def test_a_create_that_failed_leaves_the_run_never_launched(kube: KubeRuns) -> None:
    kube.fake.unavailable = True
    executor = kube.executor()
    launch = kube.launch()
    with pytest.raises(ExecutorError, match="create jobs in namespace greenai: HTTP 503"):
        executor.submit(launch)
    kube.fake.unavailable = False
    assert executor.poll(executor.handle_for(launch)) == Lost("never launched")


def test_an_unavailable_api_server_leaves_the_run_running(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    kube.fake.unavailable = True
    assert executor.poll(handle) == Running()


def test_a_pod_list_that_times_out_is_asked_again_at_the_next_poll(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    kube.fake.finish(handle.ref["name"], 0)
    kube.fake.lost_answers.add(("list", "pods"))
    assert executor.poll(handle) == Running()  # not lost: the run did end, greenai will learn how
    status = executor.poll(handle)
    assert isinstance(status, Exited) and status.exit_code == 0


def test_a_job_deleted_by_someone_else_ends_with_its_pods_exit_status(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    job = kube.fake.jobs[handle.ref["name"]]
    job.phase, job.exit_code = "deleting", 143  # kubectl delete job --cascade=foreground
    status = executor.poll(handle)
    assert isinstance(status, Exited) and (status.exit_code, status.signal) == (143, 15)
    assert status.notes[0] == "stopped: its Job was deleted, not by greenai"


def test_cancel_deletes_the_job_with_its_pods(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch(gpus=1))
    executor.cancel(handle)
    [delete] = kube.fake.made("DELETE", "/jobs/")
    assert delete.path == f"/apis/batch/v1/namespaces/greenai/jobs/{handle.ref['name']}"
    assert delete.body == {"propagationPolicy": "Foreground"}
    status = executor.poll(handle)  # the Job is still being deleted: its pod said 143
    assert isinstance(status, Exited) and (status.exit_code, status.signal) == (143, 15)
    assert status.notes[0] == "stopped on request: its Job was deleted with its pods"
    assert kube.executor().attach(handle) == status


def test_a_forced_cancel_kills_at_once_and_a_job_gone_at_once_still_ends(kube: KubeRuns) -> None:
    kube.fake.linger = 0  # the API removes the Job before greenai looks again
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    executor.cancel(handle, force=True)
    [delete] = kube.fake.made("DELETE", "/jobs/")
    assert delete.body == {"propagationPolicy": "Foreground", "gracePeriodSeconds": 0}
    status = executor.poll(handle)
    assert isinstance(status, Exited) and (status.exit_code, status.signal) == (137, 9)
    assert "end time is when greenai saw the Job gone" in status.notes


def test_cancel_leaves_a_finished_job_alone(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    kube.fake.finish(handle.ref["name"], 0)
    executor.cancel(handle, force=True)  # not yet polled: the API says it has ended
    assert kube.fake.made("DELETE", "/jobs/") == []
    assert isinstance(executor.poll(handle), Exited)


def test_attach_without_a_name_finds_the_job_by_its_labels(kube: KubeRuns) -> None:
    handle = kube.executor().submit(kube.launch())
    bare = Handle("kubernetes", "job-a", 1, {"state_dir": handle.ref["state_dir"]})
    assert kube.executor().attach(bare) == Running()
    [listed] = [r for r in kube.fake.made("GET", "/jobs") if r.path.endswith("/jobs")]
    assert listed.query["labelSelector"] == SELECTOR
    kube.fake.jobs.clear()
    with pytest.raises(ExecutorError, match="0 Jobs match"):
        kube.executor().attach(bare)


def test_wait_follows_the_watch_stream_to_the_end(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    kube.fake.watch_script = ["finish:0"]
    status = executor.wait(handle, timeout_s=10)
    assert isinstance(status, Exited) and status.exit_code == 0
    [watch] = [r for r in kube.fake.requests if r.query.get("watch", "").lower() == "true"]
    assert watch.query["fieldSelector"] == f"metadata.name={handle.ref['name']}"
    assert watch.query["resourceVersion"]  # from the list before it


@pytest.mark.parametrize("gone", ["gone-event", "gone-status"])
def test_a_watch_410_gone_lists_again_and_watches_on(kube: KubeRuns, gone: str) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    kube.fake.watch_script = [gone, "finish:4"]
    status = executor.wait(handle, timeout_s=10)
    assert isinstance(status, Exited) and status.exit_code == 4
    lists = [r for r in kube.fake.made("GET", "/jobs") if r.path.endswith("/jobs")]
    watches = [r for r in lists if r.query.get("watch", "").lower() == "true"]
    assert len(watches) == 2 and len(lists) - len(watches) == 2  # a fresh list after the 410


def test_a_pause_deletes_the_pieces_job_with_its_grace_and_it_ends_paused(
    kube: KubeRuns,
) -> None:
    executor = kube.executor()
    assert executor.can_pause and executor.picks_gpus
    launch = kube.launch(piece=2)
    handle = executor.submit(launch)
    assert handle.ref["name"] == "greenai-job-a-1-p2"
    [create] = kube.fake.made("POST", "/jobs")
    assert create.body["metadata"]["labels"]["greenai.dev/piece"] == "2"
    executor.pause(handle, signal.SIGUSR1, 29.5)  # Kubernetes cannot send SIGUSR1: SIGTERM
    executor.pause(handle, signal.SIGTERM, 10)  # asked already: nothing more
    [delete] = kube.fake.made("DELETE", "/jobs/")
    assert delete.body == {"propagationPolicy": "Foreground", "gracePeriodSeconds": 30}
    status = executor.poll(handle)
    assert isinstance(status, Exited) and status.paused
    assert (status.exit_code, status.signal) == (143, 15)
    assert status.notes[0] == "paused: its Job was deleted with its pods"
    assert kube.executor().attach(handle) == status


def test_a_piece_without_a_name_is_found_by_its_piece_label(kube: KubeRuns) -> None:
    executor = kube.executor()
    first = executor.submit(kube.launch(piece=1))
    kube.fake.finish(first.ref["name"], 0)
    second = executor.submit(kube.launch(piece=2))
    bare = Handle("kubernetes", "job-a", 1, {"state_dir": second.ref["state_dir"], "piece": "2"})
    assert kube.executor().attach(bare) == Running()
    [listed] = [r for r in kube.fake.made("GET", "/jobs") if r.path.endswith("/jobs")]
    assert listed.query["labelSelector"] == f"{SELECTOR},greenai.dev/piece=2"


def test_a_pause_of_a_finished_piece_changes_nothing(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch(piece=1))
    kube.fake.finish(handle.ref["name"], 0)
    executor.pause(handle, signal.SIGTERM, 30)
    assert kube.fake.made("DELETE", "/jobs/") == []
    status = executor.poll(handle)
    assert isinstance(status, Exited) and not status.paused


def test_settings_come_from_an_env_mapping_and_name_what_is_wrong() -> None:
    settings = KubernetesSettings.from_env(
        {"GREENAI_K8S_NAMESPACE": "ml", "GREENAI_K8S_TTL_SECONDS": "60"}
    )
    assert (settings.namespace, settings.ttl_seconds, settings.image) == ("ml", 60, None)
    with pytest.raises(ConfigError, match="GREENAI_K8S_IMAGE"):
        settings.required_image()
    with pytest.raises(ConfigError, match="GREENAI_K8S_TTL_SECONDS"):
        KubernetesSettings.from_env({"GREENAI_K8S_TTL_SECONDS": "-1"})


def test_required_permissions_cover_every_call_the_tests_saw(kube: KubeRuns) -> None:
    executor = kube.executor()
    handle = executor.submit(kube.launch())
    kube.fake.watch_script = ["finish:0"]
    executor.wait(handle, timeout_s=10)
    executor.attach(Handle("kubernetes", "job-a", 1, {}))
    executor.cancel(executor.submit(kube.launch("job-b")))
    seen = set()
    for r in kube.fake.requests:
        resource = "pods" if "/pods" in r.path else "jobs"
        if r.query.get("watch", "").lower() == "true":
            name = "watch"
        elif r.method == "GET":
            name = "list" if r.path.endswith(("/jobs", "/pods")) else "get"
        else:
            name = {"POST": "create", "DELETE": "delete"}[r.method]
        seen.add(Permission("" if resource == "pods" else "batch", resource, name))
    assert seen == set(REQUIRED_PERMISSIONS)
