"""``fleet``'s cell prices: room that another job needs more is left to it, and the flexible
arrivals of the last day are expected again, so the first jobs do not take the cleanest room
greedily."""

from __future__ import annotations

from dataclasses import replace

from greenai.policies.base import Capacity
from greenai.policies.fleet import FleetSettings, plan_fleet
from greenai.policies.fleet_arrivals import ArrivalMemory
from greenai.policies.fleet_reasons import fleet_reasons
from tests.policies.helpers import ORIGIN, H, view
from tests.policies.test_fleet import jobs, starts

# now 300, then one clean hour, then dirty hours
NOW_CLEAN_DIRTY = [300.0, 100.0, 900.0, 900.0, 900.0, 900.0]
EXACT = FleetSettings(margin_minutes=0.0, price_rounds=0)


def test_a_job_that_can_run_elsewhere_leaves_the_clean_hour_to_one_that_cannot() -> None:
    # one GPU; A may start now (300) up to the clean hour (100), B (submitted for 1 h) in the
    # clean hour or dirty ones. Placed by latest start alone, A takes the clean hour and B a
    # dirty one (100 + 900); priced, A runs now and B in the clean hour (300 + 100)
    batch = jobs([(0, H, H, 1, True), (H, H, 2 * H, 1, True)])
    greedy = plan_fleet(batch, view(NOW_CLEAN_DIRTY), 0.0, Capacity(1), EXACT)
    assert starts(greedy, 0.0).tolist()[0] == H and starts(greedy, 0.0).tolist()[1] >= 2 * H
    priced = replace(EXACT, price_rounds=30)
    plan = plan_fleet(batch, view(NOW_CLEAN_DIRTY), 0.0, Capacity(1), priced)
    assert starts(plan, 0.0).tolist() == [0.0, H]
    assert plan.cost.tolist() == [300.0, 100.0]  # the plan reports intensity, not prices
    assert plan.free.min() >= 0 and not plan.late.any()


def test_jobs_expected_from_the_last_day_keep_the_clean_hour_from_an_early_job() -> None:
    # the one job queued could take the clean hour; a job like yesterday's that will arrive
    # in 30 min needs it more (it can only use the clean hour or dirty ones)
    batch = jobs([(0, H, H, 1, True)])
    coming = jobs([(0.5 * H, H, 2.5 * H, 1, True)])
    priced = replace(EXACT, price_rounds=30)
    alone = plan_fleet(batch, view(NOW_CLEAN_DIRTY), 0.0, Capacity(1), priced)
    assert starts(alone, 0.0).tolist() == [H]
    plan = plan_fleet(batch, view(NOW_CLEAN_DIRTY), 0.0, Capacity(1), priced, coming)
    assert starts(plan, 0.0).tolist() == [0.0]
    assert "left to flexible jobs expected to arrive" in fleet_reasons(batch, plan, 1.0)[0]


def test_the_memory_expects_each_flexible_job_of_the_last_day_a_day_later() -> None:
    memory = ArrivalMemory()
    seen = jobs([(0, H, 8 * H, 2, True), (0, H, 0.5 * H, 4, False), (3 * H, 2 * H, 8 * H, 1, True)])
    memory.see(seen.take([0, 1]), 0.0)
    memory.see(seen.take([0, 2]), 3 * H)  # job 0 again: remembered once
    expected = memory.expected(ORIGIN, 3 * H)
    assert expected is not None
    assert expected.submit.tolist() == [24 * H, 27 * H]  # rigid work is the reserve's
    assert expected.deadline.tolist() == [33 * H, 37 * H]
    assert expected.gpus.tolist() == [2, 1] and expected.flexible.all()
    memory.see(jobs([]), 25 * H)  # a day after job 0: its repeat has arrived, it is forgotten
    later = memory.expected(ORIGIN, 25 * H)
    assert later is not None and later.submit.tolist() == [27 * H]
    memory.see(jobs([]), 26 * H, origin=7)  # another history: a new run, nothing is known
    assert memory.expected(ORIGIN, 26 * H) is None
    memory.see(seen.take([2]), 26 * H, origin=7)
    memory.see(jobs([]), 0.0, origin=7)  # an earlier moment: a new run too
    assert memory.expected(ORIGIN, 0.0) is None
