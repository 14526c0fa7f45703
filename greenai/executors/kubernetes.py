"""Runs each job attempt as a Kubernetes ``batch/v1`` Job (``--executor kubernetes``).

``submit`` creates the Job (``job_manifest.build_job``: the image, the argv, the job's env,
``nvidia.com/gpu`` limits, labels naming the greenai job and attempt, ``backoffLimit: 0``,
``ttlSecondsAfterFinished``, ``activeDeadlineSeconds`` from the launch's limits) at the planned
start. A Job of that name that exists already (409: a restarted daemon submitting again) is
adopted when its labels say it is this attempt, refused otherwise. ``poll`` reads the Job, and
once it has ended its pod (``job_status``): no watch is needed for a correct answer. ``wait``
follows a watch stream to learn of the end sooner, re-listing when the API says the watch's
version is gone (410). ``cancel`` deletes the Job with ``propagationPolicy: Foreground`` (its
pods go too: SIGTERM, SIGKILL after ``grace_s``; ``force``: at once); a finished Job is left
alone. ``pause`` deletes a piece's Job the same way, with the pause's grace (SIGTERM, SIGKILL
``grace_s`` later): the piece ends paused, and the next piece is a new Job (``-p<piece>``),
so an interruptible job's checkpoints must be on storage its pods share. After a restart
``attach`` finds the Job by name, or by label when the handle has none.

The run's folder (``Launch.state_dir``) holds the executor's records: ``kubernetes.json``
(the Job was created), ``kubernetes-stop.json`` (a cancel or pause was asked) and
``kubernetes-exit.json`` (how it ended, as first seen), so an answer stays the same once given,
even after the Job's TTL has removed it.

**Energy.** The daemon cannot meter a pod on another node, so ``Exited.reading`` is ``None`` and
its notes name the pod, the node and the GPU count: the engine's stand-in reading
(``scheduling.runs.stand_in_reading``) makes the evidence row an estimate from the declared
power (``meter=estimate``, the parts' methods ``declared`` or ``estimate``, ``estimated``
listing them), never a measurement. For real readings, meter inside the pod: run the command
under ``greenai run`` in the image (NVML sees the pod's GPUs), or read the node's DCGM exporter
(``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` per GPU, labelled with the pod) for the run's window.
Neither is wired into this executor yet.

**Not here.** Choosing the pause signal (the kubelet sends the image's stop signal); the
command's output (read it with ``kubectl logs job/NAME``). A pod that never starts
(unschedulable, image pull errors) stays ``Running`` until ``activeDeadlineSeconds``, where the
job has a limit.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from greenai.core.errors import ExecutorError
from greenai.core.settings import SECRET_ENV_NAMES
from greenai.core.time import Clock, SystemClock, format_time, parse_time
from greenai.executors import job_status
from greenai.executors.base import Exited, Handle, Launch, Lost, Running, RunStatus
from greenai.executors.job_manifest import PodSpecOptions, build_job, is_ours, job_name
from greenai.executors.job_manifest import label_selector as selector_for
from greenai.executors.kubernetes_api import ApiCalls, ApiFailure
from greenai.executors.kubernetes_config import KubernetesSettings, api_client
from greenai.executors.supervisor import read_record, write_record

log = logging.getLogger(__name__)

SUBMITTED = "kubernetes.json"
STOPPED = "kubernetes-stop.json"  # a cancel or a pause was asked: the Job was deleted
ENDED = "kubernetes-exit.json"
WATCH_MIN_S = 0.2  # a watch that ends sooner is followed by this pause before the next


class Permission(NamedTuple):
    api_group: str  # "" is the core group
    resource: str
    verb: str


# Every API call the executor makes: the Role its service account needs (deploy/k8s/).
REQUIRED_PERMISSIONS: tuple[Permission, ...] = (
    Permission("batch", "jobs", "create"),
    Permission("batch", "jobs", "get"),
    Permission("batch", "jobs", "list"),
    Permission("batch", "jobs", "watch"),
    Permission("batch", "jobs", "delete"),
    Permission("", "pods", "list"),
)


class KubernetesExecutor:
    """Jobs as ``batch/v1`` Jobs in one namespace; the cluster picks the GPUs."""

    name = "kubernetes"
    picks_gpus = True
    can_pause = True

    def __init__(
        self, settings: KubernetesSettings, client: Any, clock: Clock = SystemClock()
    ) -> None:
        """``client``: a ``kubernetes.client.ApiClient`` (the seam tests point at a server)."""
        self.settings = settings
        self.options = PodSpecOptions(
            settings.required_image(),
            settings.ttl_seconds,
            settings.service_account,
            settings.image_pull_policy,
        )
        self.api = ApiCalls(client, settings.namespace, settings.request_timeout_s)
        self._clock = clock

    def handle_for(self, launch: Launch) -> Handle:
        ref = {
            "namespace": self.settings.namespace,
            "name": job_name(launch.job_id, launch.attempt, launch.piece),
            "state_dir": str(launch.state_dir.absolute()),
        }
        if launch.piece:
            ref["piece"] = str(launch.piece)
        return Handle(self.name, launch.job_id, launch.attempt, ref)

    def submit(self, launch: Launch) -> Handle:
        handle = self.handle_for(launch)
        state_dir = launch.state_dir.absolute()
        body = build_job(launch, self.options, self._clock.now(), SECRET_ENV_NAMES)
        dropped = sorted(SECRET_ENV_NAMES & set(launch.env or {}))
        if dropped:
            log.warning("job %s: secret variables not passed on: %s", launch.job_id, dropped)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            state_dir.chmod(0o700)
        except OSError as exc:
            raise ExecutorError(f"job {launch.job_id}: cannot write {state_dir}: {exc}") from exc
        if (state_dir / SUBMITTED).exists():
            raise ExecutorError(f"job {launch.job_id}: {state_dir} was launched before")
        record = {
            "namespace": handle.ref["namespace"],
            "name": handle.ref["name"],
            "submitted_at": format_time(self._clock.now()),
            "gpus": launch.gpus,
            "argv0": launch.command[0] if launch.command else "",
            "limit_note": job_status.limit_note(launch, body["spec"].get("activeDeadlineSeconds")),
        }
        # Recorded first: a Job is never created that the folder does not know of.
        self._write(handle, state_dir / SUBMITTED, record)
        try:
            self._create(handle, body)
        except ExecutorError:
            (state_dir / SUBMITTED).unlink(missing_ok=True)  # never launched, as it says
            raise
        log.info("job %s: Job %s created, %d GPU(s)", launch.job_id, record["name"], launch.gpus)
        return handle

    def poll(self, handle: Handle) -> RunStatus:
        known = self._ended(handle)
        if known is not None:
            return known
        try:
            return self._status(handle, _ref(handle, "name"))
        except ApiFailure as exc:
            if exc.transient:  # the API is down or busy: the run goes on all the same
                log.warning("job %s: cannot read its Job: %s", handle.job_id, exc)
                return Running()
            raise ExecutorError(f"job {handle.job_id}: {exc}") from exc

    def _status(self, handle: Handle, name: str) -> RunStatus:
        """What the Job (and, once it has ended or is being deleted, its pod) says."""
        job = self.api.read_job(name)
        if job is None:
            return self._gone(handle)
        if not is_ours(job, handle.job_id, handle.attempt, _piece(handle)):
            return Lost(f"Job {name} belongs to another greenai job or attempt")
        stopping = (job.get("metadata") or {}).get("deletionTimestamp") is not None
        if job_status.ended(job) is None and not stopping:
            return Running()
        pod = job_status.pod_facts(self.api.list_pods(f"job-name={name}"))
        if job_status.ended(job) is not None:
            now = self._clock.now()
            return self._settled(handle, job_status.exited(job, pod, self._ending(handle), now))
        if pod.exit_code is None:  # being deleted, its pod not yet stopped
            return Running()
        return self._settled(handle, self._stopped(handle, pod))

    def attach(self, handle: Handle) -> RunStatus:
        if not handle.ref.get("name"):
            handle = self._find(handle)
        return self.poll(handle)

    def cancel(self, handle: Handle, force: bool = False) -> None:
        self._stop(handle, {"why": "cancel", "force": force}, 0 if force else None)

    def pause(self, handle: Handle, signum: int, grace_s: float) -> None:
        """Delete the piece's Job so that its pod stops: the kubelet sends the image's stop
        signal (SIGTERM unless the image says otherwise; ``signum`` cannot be chosen) and
        SIGKILL ``grace_s`` later, daemon or not. The run then ends ``Exited`` and ``paused``;
        asking twice, or after a cancel, changes nothing."""
        if _read(_required_state_dir(handle) / STOPPED) is not None:
            return
        if signum != signal.SIGTERM:
            name = signal.Signals(signum).name
            log.warning("job %s: Kubernetes sends its stop signal, not %s", handle.job_id, name)
        request = {"why": "pause", "force": False, "grace_s": grace_s}
        self._stop(handle, request, max(0, math.ceil(grace_s)))

    def wait(self, handle: Handle, timeout_s: float) -> RunStatus:
        """``poll``'s answer once the run has ended or ``timeout_s`` has passed, following the
        Job's watch stream meanwhile instead of polling; a watch whose version has expired
        (410 Gone) starts again from a fresh list."""
        deadline = time.monotonic() + timeout_s
        name = _ref(handle, "name")
        version: str | None = None
        while isinstance(status := self.poll(handle), Running):
            left = deadline - time.monotonic()
            if left <= 0:
                return status
            if version is None:
                version = self._call(handle, self.api.list_version, name)
            began = time.monotonic()
            try:
                version = self.api.watch_until_ended(name, version, left)
            except ApiFailure as exc:
                if exc.status != 410:
                    raise ExecutorError(f"job {handle.job_id}: {exc}") from exc
                log.info("job %s: watch expired (410 Gone); listing again", handle.job_id)
                version = None
            if time.monotonic() - began < WATCH_MIN_S:  # a stream cut short: not a busy loop
                time.sleep(min(WATCH_MIN_S, max(0.0, deadline - time.monotonic())))
        return status

    def close(self) -> None:
        self.api.close()

    # --- helpers -----------------------------------------------------------------------------

    def _create(self, handle: Handle, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create the Job; one of that name that is this attempt's is adopted: a daemon that
        submits again after a restart (409), or a create whose answer was lost (timeout, 5xx)."""
        try:
            return self.api.create_job(body)
        except ApiFailure as exc:
            if exc.status != 409 and not exc.transient:
                raise ExecutorError(f"job {handle.job_id}: {exc}") from exc
            failure = exc
        try:
            existing = self.api.read_job(body["metadata"]["name"])
        except ApiFailure as exc:
            raise ExecutorError(f"job {handle.job_id}: {failure}; reading it back: {exc}") from exc
        if existing is None:
            raise ExecutorError(f"job {handle.job_id}: {failure}") from failure
        if not is_ours(existing, handle.job_id, handle.attempt, _piece(handle)):
            raise ExecutorError(
                f"job {handle.job_id}: a Job named {handle.ref['name']} exists in namespace "
                f"{handle.ref['namespace']} and is not this job's attempt {handle.attempt}"
            )
        log.info("job %s: adopted its existing Job %s", handle.job_id, handle.ref["name"])
        return existing

    def _find(self, handle: Handle) -> Handle:
        """The handle with the name of the Job its labels find (a handle stored without one)."""
        selector = selector_for(handle.job_id, handle.attempt, _piece(handle))
        found = self._call(handle, self.api.list_jobs, selector)
        mine = [j for j in found if is_ours(j, handle.job_id, handle.attempt, _piece(handle))]
        if len(mine) != 1:
            raise ExecutorError(f"job {handle.job_id}: {len(mine)} Jobs match {selector}")
        ref = {**handle.ref, "name": mine[0]["metadata"]["name"]}
        ref.setdefault("namespace", self.settings.namespace)
        return Handle(handle.executor, handle.job_id, handle.attempt, ref)

    def _pods(self, handle: Handle) -> list[dict[str, Any]]:
        """The Job's pods, by the label its controller gives them (``job-name``)."""
        selector = f"job-name={_ref(handle, 'name')}"
        return self._call(handle, self.api.list_pods, selector)

    def _stop(self, handle: Handle, request: Mapping[str, Any], grace: int | None) -> None:
        """Record ``request`` (a cancel or a pause) with what the pod says now, then delete the
        Job and its pods; a finished or vanished Job is left alone."""
        if self._ended(handle) is not None:
            return
        name = _ref(handle, "name")
        job = self._call(handle, self.api.read_job, name)
        if job is None or job_status.ended(job) is not None:
            return  # gone, or finished: nothing to stop
        pod = job_status.pod_facts(self._pods(handle))
        now = format_time(self._clock.now())
        started = format_time(pod.started_at)
        record = {**request, "at": now, "started_at": started, "node": pod.node, "pod": pod.name}
        folder = _state_dir(handle)
        if folder is not None:
            self._write(handle, folder / STOPPED, record)
        self._call(handle, self.api.delete_job, name, grace)
        log.info("job %s: Job %s deleted with its pods (%s)", handle.job_id, name, request["why"])

    def _gone(self, handle: Handle) -> RunStatus:
        """The Job is not there: never created, deleted on a cancel or pause, or deleted by
        someone else."""
        folder = _state_dir(handle)
        submitted = _read(folder / SUBMITTED) if folder else None
        stop = _read(folder / STOPPED) if folder else None
        if stop is not None:
            if not stop.get("started_at"):
                return Lost(f"{stop.get('why')} before its pod started")
            pod = job_status.PodFacts(name=stop.get("pod"), node=stop.get("node"),
                                      started_at=parse_time(stop["started_at"]))  # fmt: skip
            return self._settled(handle, self._stopped(handle, pod))
        if folder is not None and submitted is None:
            return Lost("never launched")
        return Lost(f"its Job {handle.ref.get('name')} is gone and nothing says how it ended")

    def _stopped(self, handle: Handle, pod: job_status.PodFacts) -> Exited:
        """A run stopped on a cancel or a pause: the pod's exit status when it left one, else
        what the signal greenai asked for makes a shell report."""
        stop = self._stop_request(handle) or {}
        signum = 9 if stop.get("force") else 15
        code = pod.exit_code if pod.exit_code is not None else 128 + signum
        now = self._clock.now()
        started = pod.started_at or now
        why = {"pause": "paused", "cancel": "stopped on request"}.get(stop.get("why", ""))
        notes = [f"{why}: its Job was deleted with its pods" if why else
                 "stopped: its Job was deleted, not by greenai"]  # fmt: skip
        if pod.finished_at is None:
            notes.append("end time is when greenai saw the Job gone")
        notes.append(job_status.placement_note(pod, self._ending(handle).gpus))
        finished = max(started, pod.finished_at or now)
        died_of = code - 128 if 128 < code < 193 else None
        return Exited(code, started, finished, None, died_of, tuple(notes))

    def _stop_request(self, handle: Handle) -> dict[str, Any] | None:
        folder = _state_dir(handle)
        return _read(folder / STOPPED) if folder else None

    def _ending(self, handle: Handle) -> job_status.Ending:
        folder = _state_dir(handle)
        submitted = (_read(folder / SUBMITTED) if folder else None) or {}
        request = self._stop_request(handle)
        stop = None if request is None else (9 if request.get("force") else 15)
        return job_status.Ending(
            int(submitted.get("gpus") or 0), str(submitted.get("argv0") or "?"),
            submitted.get("limit_note"), stop,
        )  # fmt: skip

    def _ended(self, handle: Handle) -> Exited | None:
        folder = _state_dir(handle)
        record = _read(folder / ENDED) if folder else None
        return None if record is None else job_status.exited_from(record)

    def _settled(self, handle: Handle, exited: Exited) -> Exited:
        """``exited``, paused if a pause was asked (whatever it exited with), kept."""
        if (self._stop_request(handle) or {}).get("why") == "pause":
            exited = replace(exited, paused=True)
        folder = _state_dir(handle)
        if folder is not None and folder.exists():
            self._write(handle, folder / ENDED, job_status.exited_record(exited))
        return exited

    def _call(self, handle: Handle, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except ApiFailure as exc:
            raise ExecutorError(f"job {handle.job_id}: {exc}") from exc

    def _write(self, handle: Handle, path: Path, data: Mapping[str, Any]) -> None:
        try:
            write_record(path, data)
        except OSError as exc:
            raise ExecutorError(f"job {handle.job_id}: cannot write {path}: {exc}") from exc


def _ref(handle: Handle, key: str) -> str:
    if handle.executor != KubernetesExecutor.name:
        raise ExecutorError(f"job {handle.job_id}: not a kubernetes run ({handle.executor})")
    value = handle.ref.get(key)
    if not isinstance(value, str) or not value:
        raise ExecutorError(f"job {handle.job_id}: handle names no {key}: {dict(handle.ref)}")
    return value


def _state_dir(handle: Handle) -> Path | None:
    folder = handle.ref.get("state_dir")
    return Path(folder) if isinstance(folder, str) and folder else None


def _required_state_dir(handle: Handle) -> Path:
    folder = _state_dir(handle)
    if folder is None:
        raise ExecutorError(f"job {handle.job_id}: handle names no state folder: {handle.ref}")
    return folder


def _piece(handle: Handle) -> int:
    return int(handle.ref.get("piece") or 0)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return read_record(path)
    except ValueError as exc:
        log.warning("%s", exc)
        return None


def from_environment(env: Mapping[str, str], clock: Clock = SystemClock()) -> KubernetesExecutor:
    """The executor the ``GREENAI_K8S_*`` variables of ``env`` describe (``ConfigError``
    when they do not describe a usable one)."""
    settings = KubernetesSettings.from_env(env)
    settings.required_image()
    return KubernetesExecutor(settings, api_client(settings, env), clock)
