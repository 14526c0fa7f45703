"""The budget arithmetic, pure: periods aligned from the stored start, estimates, the ledger's
verdicts, and the property that admitted estimates never exceed any period's budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.core.budgets import Budget, Candidate, Ledger, estimate_g, period_text
from greenai.core.domain import Action
from greenai.scheduling.admission import job_power_kw

START = datetime(2023, 5, 1, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_periods_are_aligned_from_the_start_and_roll_over() -> None:
    budget = Budget("nlp", 1000.0, WEEK, START)
    assert budget.period_at(START) == (START, START + WEEK)
    assert budget.period_at(START + WEEK - timedelta(microseconds=1)) == (START, START + WEEK)
    assert budget.period_at(START + 2 * WEEK + timedelta(hours=3))[0] == START + 2 * WEEK
    assert budget.period_at(START - timedelta(hours=1)) == (START - WEEK, START)
    assert [period_text(p) for p in (WEEK, timedelta(hours=12), timedelta(seconds=90))] == [
        "7d",
        "12h",
        "90s",
    ]


def test_an_estimate_is_power_times_hours_times_intensity() -> None:
    assert estimate_g(2.0, 5400, 200.0) == pytest.approx(600.0)
    assert job_power_kw(0.7, 4, None) == 0.7
    assert job_power_kw(0.0, 1, 350.0) == pytest.approx(0.35)
    assert job_power_kw(0.0, 2, None) > 0.6  # the TDP model: 300 W a GPU and a host


def candidate(job_id: str, at: datetime, grams: float | None, slack: timedelta) -> Candidate:
    return Candidate(job_id, "nlp", at, at + slack, grams)


def test_the_ledger_admits_holds_and_rejects() -> None:
    ledger = Ledger({"nlp": Budget("nlp", 1000.0, WEEK, START)})
    now = START + timedelta(days=2)
    ledger.add("nlp", now, 700.0)  # measured and running
    assert ledger.admit(candidate("a", now, 300.0, WEEK), now) is None
    held = ledger.admit(candidate("b", now, 1.0, WEEK), now)
    assert held is not None and (held.action, held.until) == (Action.DEFER, START + WEEK)
    assert "1.000 kg used" in held.reason and "overrun it by 0.001 kg" in held.reason
    late = ledger.admit(candidate("c", now, 1.0, timedelta(days=1)), now)
    assert late is not None and (late.action, late.until) == (Action.REJECT, None)
    whole = ledger.admit(candidate("d", now + WEEK, 1001.0, 3 * WEEK), now)
    assert whole is not None and whole.action is Action.REJECT
    assert ledger.admit(candidate("e", now + WEEK, 1000.0, WEEK), now) is None  # next period
    unknown = ledger.admit(candidate("f", now, None, WEEK), now)
    assert unknown is not None and unknown.action is Action.DEFER
    assert Ledger({}).admit(candidate("g", now, 1e9, WEEK), now) is None  # no budget


jobs = st.lists(
    st.tuples(
        st.integers(0, 60 * 24 * 30),  # planned start, minutes after START
        st.floats(0, 400, allow_nan=False),  # estimate, g
        st.integers(0, 60 * 24 * 20),  # slack to the latest start, minutes
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.floats(1, 2000, allow_nan=False),
    period_h=st.integers(1, 24 * 10),
    used=st.floats(0, 1500, allow_nan=False),
    jobs=jobs,
)
def test_admitted_estimates_never_exceed_the_budget_in_any_period(
    limit: float, period_h: int, used: float, jobs: list[tuple[int, float, int]]
) -> None:
    budget = Budget("nlp", limit, timedelta(hours=period_h), START)
    ledger = Ledger({"nlp": budget})
    now = START
    ledger.add("nlp", now, used)
    admitted: dict[datetime, float] = {}
    for number, (minutes, grams, slack) in enumerate(jobs):
        at = START + timedelta(minutes=minutes)
        job = candidate(str(number), at, grams, timedelta(minutes=slack))
        verdict = ledger.admit(job, now)
        begin, end = budget.period_at(at)
        if verdict is None:
            admitted[begin] = admitted.get(begin, 0.0) + grams
        elif verdict.action is Action.DEFER:  # held only to a roll-over it can still start at
            assert verdict.until == end <= job.latest_start and grams <= limit
        else:
            assert verdict.action is Action.REJECT and (end > job.latest_start or grams > limit)
    for begin, grams in admitted.items():
        already = used if begin == budget.period_at(now)[0] else 0.0
        assert already + grams <= limit + 1e-9
