"""A loopback Kubernetes API server for the executor's tests: a threading ``http.server`` on
127.0.0.1 that answers the Job and pod calls with RECORDED responses (tests/data/kubernetes/),
over a little state machine of Jobs (created, running, ended, being deleted, gone).

Each answer is the recording of that state with the Job's own name, labels, annotations and
spec laid over it, so the shapes are the API's and the identities are the test's. Every
request is kept (method, path, query, JSON body) for the tests to assert.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DATA = Path(__file__).resolve().parent.parent / "data" / "kubernetes"
MISSING_BINARY = "/no/such/binary"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
PODS = "/api/v1/namespaces/{ns}/pods"


def recorded(name: str) -> Any:
    return json.loads((DATA / name).read_text())


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class SimJob:
    body: dict[str, Any]
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    phase: str = "running"  # running, succeeded, failed, deadline, start_error, deleting
    exit_code: int | None = None
    linger: int = 1  # GETs a Job being deleted still answers before it is gone
    started: str = field(default_factory=lambda: _now())
    finished: str | None = None  # when it ended (set by the test's finish, or a delete)

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("labels") or {})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    wanted = dict(part.split("=", 1) for part in selector.split(","))
    return all(labels.get(k) == v for k, v in wanted.items())


class FakeKubernetes:
    """The cluster's state and the recorded answers; ``url`` is where the client points."""

    def __init__(self, namespace: str = "greenai") -> None:
        self.namespace = namespace
        self.jobs: dict[str, SimJob] = {}
        self.requests: list[Request] = []
        self.forbidden: set[tuple[str, str]] = set()  # (verb, resource) answered 403
        self.unavailable = False  # every call answered 503
        self.lost_answers: set[tuple[str, str]] = set()  # (verb, resource) done, answered 504
        self.watch_script: list[str] = []  # "gone-event", "gone-status", "finish:<code>"
        self.linger = 1
        self.lock = threading.Lock()
        self._version = 48213
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeKubernetes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- what tests do to the cluster ------------------------------------------------------

    def finish(self, name: str, code: int) -> None:
        with self.lock:
            job = self.jobs[name]
            job.phase, job.exit_code = ("succeeded", 0) if code == 0 else ("failed", code)
            job.finished = _now()

    def made(self, method: str, resource: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and resource in r.path]

    # --- rendering the recordings ----------------------------------------------------------

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def render_job(self, job: SimJob) -> dict[str, Any]:
        files = {"running": "job_running.json", "succeeded": "job_succeeded.json",
                 "failed": "job_failed.json", "start_error": "job_failed.json",
                 "deadline": "job_deadline.json", "deleting": "job_deleting.json"}  # fmt: skip
        answer = recorded(files[job.phase])
        metadata = answer["metadata"]
        metadata.update(
            name=job.name,
            namespace=self.namespace,
            uid=job.uid,
            labels=job.labels,
            annotations=dict(job.body["metadata"].get("annotations") or {}),
            resourceVersion=self._next_version(),
        )
        spec = copy.deepcopy(job.body["spec"])
        answer["spec"] = {**answer["spec"], **spec}
        if "activeDeadlineSeconds" not in spec:
            answer["spec"].pop("activeDeadlineSeconds", None)
        status = answer["status"]
        status["startTime"] = job.started
        if "completionTime" in status:
            status["completionTime"] = job.finished or job.started
        return answer  # type: ignore[no-any-return]

    def render_pods(self, job: SimJob) -> dict[str, Any]:
        files = {"running": "pods_running.json", "succeeded": "pods_succeeded.json",
                 "failed": "pods_failed.json", "start_error": "pods_start_error.json",
                 "deadline": "pods_terminated_by_signal.json",
                 "deleting": "pods_terminated_by_signal.json"}  # fmt: skip
        answer = recorded(files[job.phase])
        for pod in answer["items"]:
            pod["metadata"]["name"] = f"{job.name}-x7k2p"
            pod["metadata"]["labels"] = {**job.labels, "job-name": job.name}
            terminated = pod["status"]["containerStatuses"][0]["state"].get("terminated")
            if terminated is not None and job.exit_code is not None:
                terminated["exitCode"] = job.exit_code
            if terminated is not None:
                terminated["finishedAt"] = job.finished or job.started
                if terminated["startedAt"] > "1970-01-01T00:00:00Z":
                    terminated["startedAt"] = job.started
            else:
                pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"] = job.started
        return answer  # type: ignore[no-any-return]

    # --- answering -------------------------------------------------------------------------

    def answer(self, request: Request) -> tuple[int, Any]:
        verb = {"POST": "create", "GET": "get", "DELETE": "delete"}[request.method]
        resource = "pods" if "/pods" in request.path else "jobs"
        if request.query.get("watch", "").lower() == "true":
            verb = "watch"
        elif request.method == "GET" and request.path.endswith(("/jobs", "/pods")):
            verb = "list"
        if self.unavailable:
            return 503, {"kind": "Status", "code": 503, "message": "etcdserver: leader changed"}
        if (verb, resource) in self.forbidden:
            status = recorded("status_403.json")
            status["message"] = status["message"].replace("cannot create", f"cannot {verb}")
            return 403, status
        with self.lock:
            if resource == "pods":
                answer: tuple[int, Any] = (200, self._pods(request))
            else:
                answer = getattr(self, f"_{verb}")(request)
        if (verb, resource) in self.lost_answers:  # done, but the answer timed out on the way
            self.lost_answers.discard((verb, resource))
            return 504, {"kind": "Status", "code": 504, "message": "request timed out"}
        return answer

    def _create(self, request: Request) -> tuple[int, Any]:
        name = request.body["metadata"]["name"]
        if name in self.jobs:
            status = recorded("status_409.json")
            status["message"] = f'jobs.batch "{name}" already exists'
            return 409, status
        job = SimJob(copy.deepcopy(request.body), linger=self.linger)
        if (
            request.body["spec"]["template"]["spec"]["containers"][0]["command"][0]
            == MISSING_BINARY
        ):
            job.phase, job.finished = "start_error", _now()
        self.jobs[name] = job
        created = recorded("job_created.json")
        created["metadata"].update(name=name, uid=job.uid, labels=job.labels)
        created["spec"] = {**created["spec"], **copy.deepcopy(request.body["spec"])}
        return 201, created

    def _get(self, request: Request) -> tuple[int, Any]:
        name = request.path.rsplit("/", 1)[1]
        job = self.jobs.get(name)
        if job is None:
            status = recorded("status_404.json")
            status["message"] = f'jobs.batch "{name}" not found'
            return 404, status
        if job.phase == "deleting":
            if job.linger <= 0:
                del self.jobs[name]
                return self._get(request)
            job.linger -= 1
        return 200, self.render_job(job)

    def _list(self, request: Request) -> tuple[int, Any]:
        answer = recorded("job_list.json")
        wanted = request.query.get("fieldSelector", "").removeprefix("metadata.name=")
        for job in self.jobs.values():
            if _matches(job.labels, request.query.get("labelSelector")) and wanted in (
                "",
                job.name,
            ):
                answer["items"].append(self.render_job(job))
        answer["metadata"]["resourceVersion"] = self._next_version()
        return 200, answer

    def _pods(self, request: Request) -> Any:
        answer = recorded("pods_none.json")
        for job in self.jobs.values():  # the Job controller labels its pods with job-name
            if _matches({**job.labels, "job-name": job.name}, request.query.get("labelSelector")):
                answer["items"].extend(self.render_pods(job)["items"])
        return answer

    def _delete(self, request: Request) -> tuple[int, Any]:
        name = request.path.rsplit("/", 1)[1]
        job = self.jobs.get(name)
        if job is None:
            return 404, recorded("status_404.json")
        options = request.body or {}
        if job.phase == "running":
            job.phase = "deleting"
            job.exit_code = 137 if options.get("gracePeriodSeconds") == 0 else 143
            job.finished = _now()
        if options.get("propagationPolicy") == "Foreground" and job.linger > 0:
            return 200, self.render_job(job)
        del self.jobs[name]
        return 200, recorded("delete_background.json")

    def _watch(self, request: Request) -> tuple[int, Any]:
        step = self.watch_script.pop(0) if self.watch_script else ""
        if step == "gone-status":
            return 410, recorded("status_410.json")
        if step == "gone-event":
            return 200, Lines((DATA / "watch_gone.jsonl").read_text().splitlines())
        name = request.query.get("fieldSelector", "").removeprefix("metadata.name=")
        job = self.jobs.get(name)
        if job is None:
            return 200, Lines([])
        events = [
            json.loads(line) for line in (DATA / "watch_events.jsonl").read_text().splitlines()
        ]
        lines = []
        for event in events[:2]:
            event["object"] = self.render_job(job)
            lines.append(json.dumps(event))
        if step.startswith("finish:"):
            job.phase, job.exit_code, job.finished = "succeeded", 0, _now()
            code = int(step.split(":")[1])
            if code:
                job.phase, job.exit_code = "failed", code
            lines.append(json.dumps({"type": "MODIFIED", "object": self.render_job(job)}))
        return 200, Lines(lines)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = Request(self.command, parts.path, query, json.loads(raw) if raw else None)
                fake.requests.append(request)
                status, payload = fake.answer(request)
                if isinstance(payload, Lines):
                    data = "".join(f"{line}\n" for line in payload.lines).encode()
                else:
                    data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return  # the tests assert fake.requests instead

        return Handler


@dataclass
class Lines:
    """A watch stream: newline-delimited JSON events."""

    lines: list[str]
