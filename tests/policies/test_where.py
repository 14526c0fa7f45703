"""The location ranking on real 2023 grids (one week of each): data gravity arithmetic,
eligibility, like-with-like signals, the explanation, and properties over random questions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.core.domain import Forecast, Signal
from greenai.formats.traces import load_trace
from greenai.policies.where import Question, Site, rank_locations, transfer_seconds
from greenai.policies.where_words import explain, size_text

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
GRIDS = {
    "GB": "GB_2023_hourly.electricitymaps.csv",
    "PJM": "US-MIDA-PJM_2023_hourly.electricitymaps.csv",
    "NY": "US-NY-NYIS_2023_hourly.electricitymaps.csv",
    "ERCOT": "US-TEX-ERCO_2023_hourly.electricitymaps.csv",
    "ON": "CA-ON_2023_hourly.electricitymaps.csv",
}
NOW = datetime(2023, 5, 1, tzinfo=UTC)
WEEK = 7 * 24


@cache
def week(name: str) -> Forecast:
    """One real week (from NOW) of a grid, as a perfect forecast."""
    trace = load_trace(DATA / GRIDS[name])
    i = trace.index_at(NOW)
    values = tuple(float(v) for v in trace.actual[i : i + WEEK])
    return Forecast(NOW, timedelta(hours=1), values, Signal.AVERAGE, f"trace:{name}", name, NOW)


def sites(**links: float) -> list[Site]:
    """Every grid, 8 GPUs, $0.08/GB egress; GB and ON are "eu"/"ca" residency; PJM links to
    every other location at ``links`` Gbit/s (default 100)."""
    residency = {"GB": {"eu"}, "ON": {"ca"}}
    gbps = {name: links.get(name, 100.0) for name in GRIDS if name != "PJM"}
    return [
        Site(
            name,
            week(name),
            gpus=8,
            residency=frozenset(residency.get(name, {"us"})),
            egress_usd_per_gb=0.08,
            links_gbps=gbps if name == "PJM" else {},
        )
        for name in GRIDS
    ]


def ask(**changes: object) -> Question:
    base = Question(NOW, timedelta(hours=2), NOW + timedelta(hours=48), power_kw=5.6, gpus=8)
    return replace(base, **changes)  # type: ignore[arg-type]


def brute_best_kg(forecast: Forecast, question: Question) -> float:
    """The lowest job kg over every whole-hour start from NOW (a 2 h job's only kinks)."""
    last = forecast.index_at(question.deadline - question.duration)
    means = [sum(forecast.values[i : i + 2]) / 2 for i in range(last + 1)]
    return min(means) * question.power_kw * 2 / 1000


def test_forty_terabytes_over_100_gbps_take_53_minutes_and_cost_3200_dollars() -> None:
    assert transfer_seconds(40_000, 100) == 3200
    ranking = rank_locations(sites(), ask(data_gb=40_000, data_at="PJM"))
    on = next(o for o in ranking.ranked if o.location == "ON")
    assert on.transfer_s == 3200 and on.egress_usd == pytest.approx(3200)
    assert on.start is not None and on.start >= NOW + timedelta(seconds=3200)
    pjm = next(o for o in ranking.ranked if o.location == "PJM")
    assert pjm.transfer_s == 0 and pjm.egress_usd == 0 and pjm.transfer_kg == 0
    assert on.transfer_kg > 0 and any("estimate" in n for n in ranking.notes)


def test_without_data_the_cleanest_best_window_wins_exactly() -> None:
    ranking = rank_locations(sites(), ask())
    assert ranking.winner is not None and ranking.winner.location == "ON"  # Ontario: 47 g mean
    for option in ranking.ranked:
        assert option.job_kg == pytest.approx(brute_best_kg(week(option.location), ask()))
    kgs = [o.total_kg for o in ranking.ranked]
    assert kgs == sorted(kgs)


def test_residency_and_capacity_exclude_with_reasons() -> None:
    ranking = rank_locations(sites(), ask(residency="us", gpus=8))
    assert {o.location for o in ranking.ranked} == {"PJM", "NY", "ERCOT"}
    assert {o.location: o.why_not for o in ranking.excluded}["ON"] == (
        "residency: not a us location"
    )
    small = [replace(s, gpus=4) if s.name == "NY" else s for s in sites()]
    out = rank_locations(small, ask(gpus=8)).excluded
    assert [(o.location, o.why_not) for o in out] == [("NY", "capacity: 4 GPUs, the job needs 8")]


def test_a_marginal_location_is_never_ranked_against_average_ones() -> None:
    moer = replace(week("ERCOT"), signal=Signal.MARGINAL, values=(1.0,) * WEEK)
    mixed = [replace(s, forecast=moer) if s.name == "ERCOT" else s for s in sites()]
    ranking = rank_locations(mixed, ask())
    assert "ERCOT" not in {o.location for o in ranking.ranked}  # cleanest by number, yet out
    assert dict((o.location, o.why_not) for o in ranking.excluded)["ERCOT"] == (
        "marginal signal: not ranked against average ones"
    )
    assert any("never compared" in n for n in ranking.notes)


def test_data_that_cannot_arrive_in_time_rules_a_location_out() -> None:
    slow = ask(data_gb=100_000, data_at="PJM", deadline=NOW + timedelta(hours=6))
    ranking = rank_locations(sites(ON=10.0), slow)  # 100 TB at 10 Gbit/s: 22 h
    reasons = {o.location: o.why_not for o in ranking.excluded}
    assert reasons["ON"] == "deadline: data arrives after 22.2 h, too late"
    assert ranking.winner is not None and ranking.winner.location == "PJM"


def test_no_link_means_the_data_cannot_go_there() -> None:
    unlinked = [replace(s, links_gbps={"GB": 10.0}) if s.name == "PJM" else s for s in sites()]
    ranking = rank_locations(unlinked, ask(data_gb=10, data_at="PJM"))
    assert {o.location: o.why_not for o in ranking.excluded}["ON"] == "no link from PJM"


def test_with_a_carbon_price_staying_wins_and_says_what_moving_would_cost() -> None:
    question = ask(data_gb=40_000, data_at="PJM", usd_per_kg=0.05, duration=timedelta(hours=24))
    ranking = rank_locations(sites(), question)
    assert ranking.winner is not None and ranking.winner.location == "PJM"
    text = explain(ranking, question)
    assert text.startswith("stay at PJM: moving 40 TB to ON costs 53 min and $3,200 for ")
    assert "kg saved" in text


def test_without_a_price_the_move_wins_and_dollars_are_reported_not_traded() -> None:
    question = ask(data_gb=40_000, data_at="PJM", duration=timedelta(hours=24))
    ranking = rank_locations(sites(), question)
    assert ranking.winner is not None and ranking.winner.location == "ON"
    text = explain(ranking, question)
    assert text.startswith("move to ON: ")
    assert "moving 40 TB costs 53 min and $3,200 (reported, not traded" in text


def test_unknown_location_and_empty_candidates_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown location 'XX'"):
        rank_locations(sites(), ask(), ["GB", "XX"])
    with pytest.raises(ValueError, match="no candidate"):
        rank_locations(sites(), ask(), [])


def test_sizes_read_as_people_write_them() -> None:
    assert [size_text(g) for g in (40_000, 1.5, 2_000_000, 0.25)] == [
        "40 TB",
        "1.5 GB",
        "2 PB",
        "250 MB",
    ]


questions = st.builds(
    ask,
    duration=st.integers(1, 24).map(lambda h: timedelta(hours=h)),
    deadline=st.integers(24, WEEK - 1).map(lambda h: NOW + timedelta(hours=h)),
    data_gb=st.sampled_from([0.0, 1.0, 500.0, 40_000.0, 100_000.0]),
    data_at=st.sampled_from(list(GRIDS)),
    residency=st.sampled_from([None, "us", "eu", "ca"]),
    gpus=st.integers(1, 10),
)
bandwidths = st.dictionaries(
    st.sampled_from(["GB", "NY", "ERCOT", "ON"]), st.sampled_from([1.0, 10.0, 100.0])
)


@settings(max_examples=150, deadline=None)
@given(question=questions, links=bandwidths)
def test_properties_residency_arrival_deadline_order(
    question: Question, links: dict[str, float]
) -> None:
    ranking = rank_locations(sites(**links), question)
    by_name = {s.name: s for s in sites(**links)}
    for option in ranking.ranked:
        assert (
            question.residency is None or question.residency in by_name[option.location].residency
        )
        assert option.start is not None
        assert option.start >= question.now + timedelta(seconds=option.transfer_s)  # data first
        assert option.start + question.duration <= question.deadline
        assert by_name[option.location].gpus >= question.gpus
        assert option.signal == ranking.signal
        if option.location == question.data_at or not question.data_gb:
            assert option.transfer_s == 0 and option.egress_usd == 0
    scores = [o.score(question.usd_per_kg) for o in ranking.ranked]
    assert scores == sorted(scores)
    assert len(ranking.ranked) + len(ranking.excluded) == len(GRIDS)
