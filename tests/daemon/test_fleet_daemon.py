"""The daemon plans its queue with ``fleet`` once it has GPU slots (issue 10): flexible jobs
share the clean hours the slots allow instead of all taking the same one, running jobs hold
their slots until their declared ends, and the rigid reserve is learned from the rigid jobs
submitted so far."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings
from greenai.daemon import daemon_policy
from greenai.policies.rigid_demand import ended, rigid_hourly
from greenai.storage.store import Store
from tests.daemon.helpers import T0, forecast
from tests.daemon.test_engine import Rig

HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("settings", "policy"),
    [
        ({"gpu_slots": "4"}, "fleet"),
        ({"gpu_slots": "0,2"}, "fleet"),
        ({"gpu_slots": "0"}, "window"),  # nothing to plan onto: each job on its own
        ({"gpu_slots": "4", "policy": "window"}, "window"),  # the operator's choice wins
    ],
)
def test_a_daemon_with_gpu_slots_plans_its_queue_with_fleet(
    settings: dict[str, str], policy: str
) -> None:
    assert daemon_policy(load_settings(env={}, **settings)) == policy


def test_flexible_jobs_share_the_clean_hours_the_slots_allow(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """With ``window`` all three would start at the cleanest hour (T0 + 1h) on one slot."""
    rig = Rig(sqlite_store, tmp_path, policy="fleet")
    jobs = [rig.submit(name=f"train-{n}", gpus=1) for n in range(3)]
    rig.tick()
    starts = sorted(rig.store.get(job).planned_start for job in jobs)  # type: ignore[type-var]
    assert starts[0] == T0 + HOUR
    assert all(later - earlier >= HOUR for earlier, later in itertools.pairwise(starts))
    reasons = [json.loads(line)["reason"] for line in rig.files.lines()]
    assert any("is full" in reason for reason in reasons)  # said why it is not the best hour


def test_a_full_best_start_now_reads_now_not_a_time_to_the_microsecond(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = Rig(sqlite_store, tmp_path, policy="fleet")
    rig.source.answer = forecast([50.0, 50.0] + [300.0] * 94)  # type: ignore[attr-defined]
    first, second = (rig.submit(name=f"train-{n}", gpus=1) for n in range(2))
    rig.tick(minutes=0.5 / 60)  # half a second past the hour
    reasons = {d["job_id"]: d["reason"] for d in map(json.loads, rig.files.lines())}
    assert reasons[first].startswith("lowest-carbon room before the deadline starts now")
    assert "the best start now (mean 50.0) is full" in reasons[second]
    assert not any(re.search(r"\d\d:\d\d:\d\d\.\d", reason) for reason in reasons.values())


def test_a_running_job_holds_its_slot_until_its_declared_end(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = Rig(sqlite_store, tmp_path, policy="fleet")
    running = rig.submit(name="etl", gpus=1, duration=3 * HOUR, deadline=T0 + 3 * HOUR)
    rig.tick()
    assert rig.state(running) == "running"
    waiting = rig.submit(name="train", gpus=1)
    rig.tick(minutes=1)
    # the clean hour at T0 + 1h is held by the running job: the next clean hour is T0 + 5h
    assert rig.store.get(waiting).planned_start == T0 + 5 * HOUR


def test_the_rigid_reserve_is_learned_from_the_rigid_jobs_submitted_so_far(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = Rig(sqlite_store, tmp_path, policy="fleet", slots=(0, 1))
    rigid = rig.submit(name="etl", gpus=1, flexible=False, submitted_at=T0 - 24 * HOUR)
    rig.tick()
    rig.executor.finish(rigid, 0)
    flexible = rig.submit(name="train", gpus=1)
    rig.tick(minutes=1)
    [plan] = [
        json.loads(line) for line in rig.files.lines() if json.loads(line)["job_id"] == flexible
    ]
    assert "kept for rigid work" in plan["reason"]
    assert "of 24 past hours" in plan["reason"]  # the 24 ended hours since the rigid submit


def test_rigid_hourly_counts_each_job_from_its_submit_and_hands_out_ended_hours() -> None:
    hour = 3600.0
    start = 1_000 * hour
    demand = rigid_hourly(
        np.asarray([start, start + 1.5 * hour]),
        np.asarray([2 * hour, 0.5 * hour]),
        np.asarray([4, 2]),
        observed_from_s=start - hour,
    )
    assert demand.first_hour == 999
    assert demand.hourly[:4].tolist() == pytest.approx([0.0, 4.0, 5.0, 0.0])
    assert ended(demand, start + 1.5 * hour).hourly.tolist() == pytest.approx([0.0, 4.0])
    later = ended(demand, start + 6 * hour).hourly.tolist()  # nothing asked since: zeros
    assert later == pytest.approx([0.0, 4.0, 5.0, 0.0, 0.0, 0.0, 0.0])


def test_past_the_flexible_fraction_jobs_run_as_rigid_and_their_decisions_say_so(
    sqlite_store: Store, tmp_path: Path
) -> None:
    rig = Rig(sqlite_store, tmp_path, policy="fleet", slots=(0, 1))
    settings = load_settings(env={}, power_watts=3600, max_flexible_fraction=0.5)
    rig.config = replace(rig.config, settings=settings)
    rig.engine = rig._engine(rig.executor)
    short = rig.submit(name="short", gpus=1, duration=HOUR)
    long = rig.submit(name="long", gpus=1, duration=2 * HOUR)
    rig.tick()
    # 3 queued GPU-h, at most 1.5 may wait: the 1-hour job waits for the clean hour, the
    # 2-hour one (saving less per GPU-hour: it runs into dirty hours anyway) runs now
    assert rig.store.get(short).planned_start == T0 + HOUR
    assert rig.state(long) == "running"
    reasons = {d["job_id"]: d["reason"] for d in map(json.loads, rig.files.lines())}
    assert reasons[long].startswith("runs as rigid: at most 50% of 3 queued GPU-h")


def test_a_flexible_fraction_needs_the_fleet_policy() -> None:
    with pytest.raises(
        ConfigError, match="max_flexible_fraction applies to policy fleet only, not window"
    ):
        daemon_policy(load_settings(env={}, policy="window", max_flexible_fraction=0.3))
    with pytest.raises(ConfigError, match="max_flexible_fraction: Input should be less than"):
        load_settings(env={}, max_flexible_fraction=1.5)


def test_a_new_daemon_has_no_past_hours_to_learn_the_reserve_from(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """Not 14 days of zeros: the first plan of an empty store says it has seen nothing."""
    rig = Rig(sqlite_store, tmp_path, policy="fleet", slots=(0, 1))
    rig.tick()  # nothing submitted yet: the hour's demand is learned from an empty store
    job = rig.submit(name="train", gpus=1)
    rig.tick(minutes=1)
    [plan] = [json.loads(line) for line in rig.files.lines() if json.loads(line)["job_id"] == job]
    assert "no past hour yet" in plan["reason"]
