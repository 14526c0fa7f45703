"""Replica harness: two real `greenai serve` daemons on one PostgreSQL and one host's GPU slots
share a workload of short real jobs; one is SIGKILLed mid-way, and the survivor must finish it
all without running anything twice or putting two jobs on one GPU at once.

Every job appends ``start``/``end`` lines with its id, attempt, time and GPUs
(``CUDA_VISIBLE_DEVICES``) to a marker file, so the harness sees what really ran,
independently of the daemons' records. The jobs are submitted through both daemons' APIs (each
job to one, drawn by the seed, as are its length, 0.05-0.6 s, and its GPUs, 1 or 2). Once a
third of the jobs have ended, one daemon that is running jobs (drawn by the seed) is frozen
(SIGSTOP, so what it holds can be read exactly) and SIGKILLed; its loop process dies with it.
The survivor's API is then polled until every job is final. It counts:

- jobs lost (missing, not final, or whose command never started) and jobs not succeeded;
- commands started more than once, and runs of one job overlapping in time;
- GPU index collisions: two runs on one GPU index at once (and indices outside the slots, and
  jobs whose marker's GPUs differ from the GPUs the API reports);
- runs the dead daemon held when killed against runs the survivor adopted (``adopt`` events
  naming the dead instance), and adopted runs started again;
- jobs submitted through the dead daemon and not final when it died, against those of them the
  survivor finished (their run's row is in the survivor's evidence file);
- evidence rows (both daemons' ``evidence.csv``) against finished runs (the API's ``evidence``
  of every job): rows twice, runs without a row, rows without a run.

    .venv/bin/python benchmarks/replica_harness.py --jobs 1000 --slots 4 --seed 1

Without ``--database-url`` it starts a throwaway PostgreSQL (`benchmarks/postgres_server.py`).
Prints one JSON object and a markdown table row (`docs/reliability.md`, "Replicas"); exits 1
when an invariant fails (``failed`` names them; the work folder is then kept for a look).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import crash_harness as ch
import httpx
from postgres_server import postgres_server
from sqlalchemy import text
from sqlalchemy.engine import Engine

from greenai.storage.database import make_engine

FINAL = {"succeeded", "failed", "cancelled", "expired"}
WAITING = ("queued", "scheduled", "running")
JOB = (
    "import os, sys, time\n"
    "marker, pause = sys.argv[1], float(sys.argv[2])\n"
    "job, attempt = os.environ['GREENAI_JOB_ID'], os.environ['GREENAI_ATTEMPT']\n"
    "gpus = os.environ.get('CUDA_VISIBLE_DEVICES') or '-'\n"
    "open(marker, 'a').write(f'start {job} {attempt} {time.time()} {gpus}\\n')\n"
    "time.sleep(pause)\n"
    "open(marker, 'a').write(f'end {job} {attempt} {time.time()} {gpus}\\n')\n"
)
HEADERS = {"Authorization": f"Bearer {ch.TOKEN}"}
TABLE_HEADER = (
    "| seed | jobs | slots | killed after (jobs ended) | runs the dead held -> adopted "
    "| its unfinished jobs -> finished by the survivor | jobs lost | not succeeded "
    "| commands started twice | runs overlapping | GPU collisions | finished runs "
    "| evidence rows | rows twice | wall s |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


@dataclass(frozen=True)
class Spec:
    pause: float  # seconds the command sleeps
    gpus: int
    via: int  # the daemon (0 or 1) whose API it is submitted to


@dataclass
class Replica:
    daemon: ch.Daemon
    instance_id: str = ""
    loop_pid: int = 0


def workload(jobs: int, slots: int, seed: int, two_gpu_share: float) -> list[Spec]:
    rng = random.Random(seed)
    return [
        Spec(
            round(rng.uniform(0.05, 0.6), 3),
            2 if slots >= 2 and rng.random() < two_gpu_share else 1,
            rng.randrange(2),
        )
        for _ in range(jobs)
    ]


def run(
    jobs: int,
    slots: int,
    seed: int,
    workdir: Path,
    database_url: str,
    kill_after: float = 1 / 3,
    two_gpu_share: float = 0.2,
    timeout_s: float = 1200.0,
) -> dict[str, Any]:
    rng = random.Random(f"kill-{seed}")
    specs = workload(jobs, slots, seed, two_gpu_share)
    marker = workdir / "markers.txt"
    marker.touch()
    homes = [workdir / name / "home" for name in ("a", "b")]
    replicas = []
    for home in homes:
        home.mkdir(parents=True)
        replicas.append(Replica(ch.Daemon(home, slots, database_url=database_url)))
    db = make_engine(database_url)
    try:
        for replica in replicas:
            replica.daemon.start()
        _find_loops(db, replicas)
        began = time.monotonic()
        via = submit(replicas, specs, marker)
        killed = kill_one(db, replicas, via, marker, round(jobs * kill_after), rng)
        killed["seconds_to_kill"] = round(killed.pop("at") - began, 1)
        survivor = replicas[1 - killed["victim"]]
        wait_until_final(survivor.daemon, set(via), began + timeout_s)
        seconds = time.monotonic() - began
        details = fetch_details(survivor.daemon.url, list(via))
        survivor.daemon.stop()
    finally:
        for replica in replicas:
            replica.daemon.kill()
        db.dispose()
    result = check(specs, via, details, marker, homes, killed, replicas, slots)
    result.update(jobs=jobs, slots=slots, seed=seed, seconds=round(seconds, 1))
    return result


def _find_loops(db: Engine, replicas: list[Replica]) -> None:
    """Each daemon's instance: the one whose process (the loop) is the daemon's child."""
    deadline = time.monotonic() + 60
    while True:
        with db.connect() as connection:
            rows = connection.execute(text("SELECT id, pid FROM instances")).all()
        for instance_id, pid in ((str(row[0]), int(row[1])) for row in rows):
            for replica in replicas:
                process = replica.daemon.process
                if process is not None and parent_pid(pid) == process.pid:
                    replica.instance_id, replica.loop_pid = instance_id, pid
        if all(r.instance_id for r in replicas):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the daemons' instances never showed in the database")
        time.sleep(0.1)


def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # after the command's name: state, ppid


def submit(replicas: list[Replica], specs: list[Spec], marker: Path) -> dict[str, int]:
    """Submit every job through its daemon's API, both daemons at once: job id -> daemon."""
    via: dict[str, int] = {}
    errors: list[str] = []

    def post(index: int) -> None:
        mine = [s for s in specs if s.via == index]
        with httpx.Client(base_url=replicas[index].daemon.url, headers=HEADERS, timeout=60) as c:
            for spec in mine:
                command = [sys.executable, "-c", JOB, str(marker), str(spec.pause)]
                body = {"command": command, "duration": 5, "max_delay": "1h", "gpus": spec.gpus}
                answer = c.post("/jobs", json=body)
                if answer.status_code != 201:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")
                    continue
                via[answer.json()["id"]] = index

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(replicas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} submissions refused, first: {errors[0]}")
    return via


def ended(marker: Path) -> int:
    return sum(1 for line in marker.read_text().splitlines() if line.startswith("end "))


def kill_one(
    db: Engine,
    replicas: list[Replica],
    via: dict[str, int],
    marker: Path,
    after: int,
    rng: random.Random,
) -> dict[str, Any]:
    """Once ``after`` jobs have ended, freeze a daemon that runs jobs, read what it holds, and
    SIGKILL it."""
    while ended(marker) < after:
        time.sleep(0.05)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        busy = sorted({i for i, r in enumerate(replicas) if _running(db, r.instance_id)})
        if not busy:
            time.sleep(0.02)
            continue
        victim = rng.choice(busy)
        replica = replicas[victim]
        with _frozen(replica):
            held = _running(db, replica.instance_id)
            if not held:
                continue
            states = _states(db, list(via))
            at, wall_at, jobs_ended = time.monotonic(), time.time(), ended(marker)
            replica.daemon.kill()
        loop_gone = _wait_gone(replica.loop_pid, 10)
        unfinished = [j for j, d in via.items() if states.get(j) not in FINAL]
        return {
            "victim": victim,
            "victim_instance": replica.instance_id,
            "at": at,
            "wall_at": wall_at,
            "killed_after_ended": jobs_ended,
            "held": sorted(held),
            "dead_queue": sorted(j for j in unfinished if via[j] == victim),
            "unfinished_at_kill": len(unfinished),
            "loop_gone": loop_gone,
        }
    raise RuntimeError("no daemon was running a job for 2 minutes")


def _running(db: Engine, instance_id: str) -> set[str]:
    query = text("SELECT id FROM jobs WHERE state = 'running' AND instance_id = :instance")
    with db.connect() as connection:
        return {row[0] for row in connection.execute(query, {"instance": instance_id})}


def _states(db: Engine, jobs: list[str]) -> dict[str, str]:
    with db.connect() as connection:
        rows = connection.execute(text("SELECT id, state FROM jobs")).all()
    wanted = set(jobs)
    return {str(row[0]): str(row[1]) for row in rows if row[0] in wanted}


@contextmanager
def _frozen(replica: Replica) -> Iterator[None]:
    """The daemon and its loop stopped (SIGSTOP) while the harness reads what they hold; they
    go on (SIGCONT) unless killed meanwhile."""
    process = replica.daemon.process
    assert process is not None
    pids = [process.pid, replica.loop_pid]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):  # killed meanwhile
                os.kill(pid, signal.SIGCONT)


def _wait_gone(pid: int, seconds: float) -> bool:
    """Whether ``pid`` ends (or is only a zombie) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def wait_until_final(daemon: ch.Daemon, jobs: set[str], deadline: float) -> None:
    """Poll the daemon's API until none of ``jobs`` is waiting or running."""
    with httpx.Client(base_url=daemon.url, headers=HEADERS, timeout=60) as client:
        while True:
            if daemon.process is None or daemon.process.poll() is not None:
                raise RuntimeError("the surviving daemon exited")
            waiting = _listed(client, WAITING) & jobs
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(waiting)} jobs still waiting or running at the deadline")
            time.sleep(1.0)


def _listed(client: httpx.Client, states: tuple[str, ...]) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while True:
        params: dict[str, Any] = {"state": list(states), "limit": 1000, "offset": offset}
        page = client.get("/jobs", params=params).raise_for_status().json()
        ids.update(item["id"] for item in page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return ids


def fetch_details(url: str, jobs: list[str]) -> dict[str, dict[str, Any] | None]:
    """Each job as the API shows it, with its decisions and its runs' evidence (None: 404)."""
    details: dict[str, dict[str, Any] | None] = {}
    with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as client:
        for job in jobs:
            answer = client.get(f"/jobs/{job}")
            details[job] = None if answer.status_code == 404 else answer.raise_for_status().json()
    return details


def read_markers(marker: Path) -> tuple[dict[str, list[list[float]]], list[tuple[str, str]]]:
    """Each job's runs as ``[start, end]`` spans (end infinite when it never ended) and each
    start's (job, GPUs)."""
    runs: dict[str, list[list[float]]] = defaultdict(list)
    starts: list[tuple[str, str]] = []
    for line in marker.read_text().splitlines():
        kind, job, _attempt, at, gpus = line.split()
        if kind == "start":
            runs[job].append([float(at), float("inf")])
            starts.append((job, gpus))
        else:  # the run that started last for this job and has not ended
            open_runs = [r for r in runs[job] if r[1] == float("inf")]
            open_runs[-1][1] = float(at)
    return runs, starts


def by_gpu(runs: dict[str, list[list[float]]], starts: list[tuple[str, str]]) -> dict[str, list]:
    """Each GPU index's occupations: every run's span under each index it was given."""
    seen: Counter[str] = Counter()
    spans: dict[str, list[list[float]]] = defaultdict(list)
    for job, gpus in starts:
        span = runs[job][seen[job]]
        seen[job] += 1
        for gpu in gpus.split(","):
            spans[gpu].append(span)
    return spans


def read_evidence(home: Path) -> list[dict[str, str]]:
    path = home / "evidence.csv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def log_errors(daemon: ch.Daemon) -> int:
    if not daemon.log.exists():
        return 0
    lines = daemon.log.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if " ERROR " in line or line.startswith("Traceback"))


def check(
    specs: list[Spec],
    via: dict[str, int],
    details: dict[str, dict[str, Any] | None],
    marker: Path,
    homes: list[Path],
    killed: dict[str, Any],
    replicas: list[Replica],
    slots: int,
) -> dict[str, Any]:
    victim, survivor = killed["victim"], 1 - killed["victim"]
    runs, starts = read_markers(marker)
    gpus = by_gpu(runs, starts)
    shown = {job: d for job, d in details.items() if d is not None}
    state = {job: (shown[job]["state"] if job in shown else None) for job in via}
    events = {job: [(e["action"], e["reason"]) for e in d["decisions"]] for job, d in shown.items()}
    rows = [read_evidence(home) for home in homes]
    row_ids = Counter(row["run_id"] for file in rows for row in file)
    run_ids = {run["id"] for d in shown.values() for run in d["evidence"]}
    finished_by_survivor = {row["job_id"] for row in rows[survivor]}
    dead = killed["victim_instance"]
    adopted = {
        job for job, seen in events.items() if any(a == "adopt" and dead in r for a, r in seen)
    }
    reattached = {job for job in adopted if any(a == "reattach" for a, _ in events[job])}
    adopted_at = [
        datetime.fromisoformat(e["at"]).timestamp()
        for job in adopted
        for e in shown[job]["decisions"]
        if e["action"] == "adopt"
    ]
    marker_gpus = {job: sorted(int(g) for g in gs.split(",") if g != "-") for job, gs in starts}
    held, dead_queue = set(killed["held"]), set(killed["dead_queue"])
    slot_names = {str(i) for i in range(slots)}
    result: dict[str, Any] = {
        "submitted": {"ab"[i]: sum(1 for d in via.values() if d == i) for i in range(2)},
        "two_gpu_jobs": sum(1 for s in specs if s.gpus == 2),
        "killed": "ab"[victim],
        "killed_after_ended": killed["killed_after_ended"],
        "seconds_to_kill": killed["seconds_to_kill"],
        "unfinished_at_kill": killed["unfinished_at_kill"],
        "dead_loop_gone": killed["loop_gone"],
        "jobs_lost": sum(1 for job in via if state[job] not in FINAL or job not in runs),
        "jobs_not_succeeded": sum(1 for job in via if state[job] != "succeeded"),
        "states": dict(Counter(str(s) for s in state.values())),
        "commands_started": sum(len(spans) for spans in runs.values()),
        "commands_started_twice": sum(1 for spans in runs.values() if len(spans) > 1),
        "runs_overlapping": sum(ch._overlaps(spans) for spans in runs.values()),
        "commands_never_ended": sum(
            1 for spans in runs.values() for span in spans if span[1] == float("inf")
        ),
        "gpu_collisions": sum(ch._overlaps(spans) for gpu, spans in gpus.items() if gpu != "-"),
        "gpus_outside_slots": sorted(set(gpus) - slot_names),
        "gpu_ids_differ": sum(
            1
            for job, d in shown.items()
            if job in marker_gpus and sorted(d["gpu_ids"]) != marker_gpus[job]
        ),
        "runs_dead_held": len(held),
        "runs_adopted": len(adopted),
        "held_not_adopted": sorted(held - adopted),
        "adopted_not_held": sorted(adopted - held),
        "adopted_still_running": len(reattached),
        "seconds_kill_to_adopt": round(max(adopted_at) - killed["wall_at"], 2)
        if adopted_at
        else None,
        "adopted_started_again": sum(
            1 for job in adopted if len(runs[job]) != 1 or shown[job]["attempts"] != 1
        ),
        "dead_queue_at_kill": len(dead_queue),
        "dead_queue_finished_by_survivor": len(dead_queue & finished_by_survivor),
        "finished_by": {"ab"[i]: len({row["job_id"] for row in rows[i]}) for i in range(2)},
        "finished_runs": len(run_ids),
        "evidence_rows": sum(row_ids.values()),
        "evidence_rows_twice": sum(1 for n in row_ids.values() if n > 1),
        "runs_without_row": sorted(run_ids - set(row_ids)),
        "rows_without_run": sorted(set(row_ids) - run_ids),
        "log_errors": {"ab"[i]: log_errors(r.daemon) for i, r in enumerate(replicas)},
    }
    holds = {
        "jobs_lost": result["jobs_lost"] == 0,
        "jobs_not_succeeded": result["jobs_not_succeeded"] == 0,
        "commands_started_twice": result["commands_started_twice"] == 0,
        "runs_overlapping": result["runs_overlapping"] == 0,
        "commands_never_ended": result["commands_never_ended"] == 0,
        "gpu_collisions": result["gpu_collisions"] == 0,
        "gpus_outside_slots": not result["gpus_outside_slots"],
        "gpu_ids_differ": result["gpu_ids_differ"] == 0,
        "runs_dead_held": result["runs_dead_held"] > 0,  # else the kill proved nothing
        "held_not_adopted": not result["held_not_adopted"],
        "adopted_not_held": not result["adopted_not_held"],
        "adopted_started_again": result["adopted_started_again"] == 0,
        "dead_queue_finished_by_survivor": dead_queue <= finished_by_survivor,
        "finished_runs": result["finished_runs"] == len(via),
        "evidence_rows": result["evidence_rows"] == result["finished_runs"],
        "evidence_rows_twice": result["evidence_rows_twice"] == 0,
        "runs_without_row": not result["runs_without_row"],
        "rows_without_run": not result["rows_without_run"],
    }
    result["failed"] = [name for name, held_up in holds.items() if not held_up]
    if result["failed"]:
        suspects = [
            job
            for job in via
            if state[job] != "succeeded"
            or len(runs.get(job, [])) != 1
            or (job in held) != (job in adopted)
            or (job in dead_queue and job not in finished_by_survivor)
        ]
        result["problem_jobs"] = {
            job: {
                "via": "ab"[via[job]],
                "state": state[job],
                "marker_runs": runs.get(job, []),
                "attempts": shown[job]["attempts"] if job in shown else None,
                "events": events.get(job, []),
            }
            for job in suspects[:20]
        }
    return result


def table_row(result: dict[str, Any]) -> str:
    cells = [
        result["seed"],
        result["jobs"],
        result["slots"],
        result["killed_after_ended"],
        f"{result['runs_dead_held']} -> {result['runs_adopted']}",
        f"{result['dead_queue_at_kill']} -> {result['dead_queue_finished_by_survivor']}",
        result["jobs_lost"],
        result["jobs_not_succeeded"],
        result["commands_started_twice"],
        result["runs_overlapping"],
        result["gpu_collisions"],
        result["finished_runs"],
        result["evidence_rows"],
        result["evidence_rows_twice"],
        result["seconds"],
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=4, help="GPU slots of the one host")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="default: a throwaway PostgreSQL of its own")
    parser.add_argument("--kill-after", type=float, default=1 / 3, help="share of jobs ended")
    parser.add_argument("--two-gpu-share", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds for it all")
    parser.add_argument("--workdir", type=Path, help="keep homes, logs and markers here")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="greenai-replicas-"))
    workdir.mkdir(parents=True, exist_ok=True)
    options = {
        "kill_after": args.kill_after,
        "two_gpu_share": args.two_gpu_share,
        "timeout_s": args.timeout,
    }
    try:
        if args.database_url:
            result = run(args.jobs, args.slots, args.seed, workdir, args.database_url, **options)
        else:
            with postgres_server() as server:
                url = server.new_database()
                result = run(args.jobs, args.slots, args.seed, workdir, url, **options)
    except BaseException:
        print(f"work folder kept: {workdir}", file=sys.stderr)
        raise
    text_out = json.dumps(result)
    print(text_out)
    print(TABLE_HEADER)
    print(table_row(result))
    if args.out:
        args.out.write_text(text_out + "\n", encoding="utf-8")
    if result["failed"]:
        print(f"invariants failed: {', '.join(result['failed'])}; work folder kept: {workdir}")
        sys.exit(1)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
