"""Re-plan benchmark: one engine re-plan of 10,000 queued jobs over a 48 h forecast.

Uses a real SQLite store (migrated), the real planner and the real store writes; prints one
JSON line with the first plan (every job queued -> scheduled, one decision each), a re-plan
over the same forecast (nothing moves: nothing written) and a re-plan after the forecast
changed (nearly every planned start moves: 9,869 updates and decisions with this seed).
``--decision-log`` also appends every decision to a JSONL log, as the live daemon does.

    .venv/bin/python benchmarks/replan.py --jobs 10000 [--decision-log]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from greenai.core.domain import Forecast, Job, JobState, Signal
from greenai.core.settings import load_settings
from greenai.daemon import EvidenceFiles
from greenai.executors.local import LocalExecutor
from greenai.meters.config import MeterConfig
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.database import make_engine, upgrade
from greenai.storage.records import Submission
from greenai.storage.store import Store

NOW = datetime(2023, 5, 4, 12, 0, tzinfo=UTC)


class Source:
    def __init__(self, values: list[float]) -> None:
        self.answer = Forecast(
            NOW, timedelta(minutes=30), tuple(values), Signal.AVERAGE, "bench:13", "13", NOW
        )

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast:
        return self.answer

    def history(self, start: datetime, end: datetime) -> Forecast:
        return self.answer


def submit_jobs(store: Store, count: int, rng: random.Random) -> None:
    batch = []
    for k in range(count):
        duration = timedelta(minutes=rng.choice([15, 30, 60, 90, 120, 240]))
        deadline = NOW + duration + timedelta(hours=rng.uniform(1, 46))
        job = Job(f"job-{k}", NOW, duration, deadline, name="job", command=("true",))
        batch.append((Submission(job), NOW))
    store.submit_many(batch)


def timed_plan(engine: Engine, now: datetime) -> float:
    began = time.perf_counter()
    engine._refresh(now)
    engine._plan(now)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--decision-log", action="store_true", help="also write the JSONL log")
    parser.add_argument(
        "--no-gc-freeze", action="store_true", help="skip the daemon's gc.freeze() (ADR 007)"
    )
    args = parser.parse_args()
    rng = random.Random(4)
    with tempfile.TemporaryDirectory(prefix="greenai-replan-") as tmp:
        store = Store(make_engine(f"sqlite:///{Path(tmp) / 'greenai.db'}"))
        upgrade(store.engine)
        submit_jobs(store, args.jobs, rng)
        source = Source([rng.uniform(50, 350) for _ in range(96)])
        config = EngineConfig((), Path(tmp), refresh_every=timedelta(0))
        log = EvidenceFiles(load_settings(env={}, home=Path(tmp))) if args.decision_log else None
        engine = Engine(store, LocalExecutor(MeterConfig()), config, lambda spec: source, log)
        if not args.no_gc_freeze:  # as `greenai serve` does once it has started
            gc.collect()
            gc.freeze()
        first = timed_plan(engine, NOW)
        steady = timed_plan(engine, NOW + timedelta(seconds=1))
        source.answer = Source([rng.uniform(50, 350) for _ in range(96)]).answer
        again = timed_plan(engine, NOW + timedelta(seconds=2))
        scheduled = store.count_by_state()[JobState.SCHEDULED]
        decisions = sum(store.count_by_action().values())
        store.engine.dispose()
    print(
        json.dumps(
            {
                "jobs": args.jobs,
                "decision_log": args.decision_log,
                "gc_freeze": not args.no_gc_freeze,
                "forecast_hours": 48,
                "first_plan_s": round(first, 3),
                "replan_unchanged_s": round(steady, 3),
                "replan_s": round(again, 3),
                "scheduled": scheduled,
                "decisions": decisions,
            }
        )
    )


if __name__ == "__main__":
    main()
