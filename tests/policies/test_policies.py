"""The registered policies against brute force and hand-worked cases: exact, earliest,
deadline-safe, and the registry every front-end reads."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.core.errors import ConfigError
from greenai.policies.registry import all_policies, get_policy, policy_names, register
from greenai.policies.windows import Grid
from tests.policies.helpers import H, job, one, plan, view


def brute_mean(values: list[float], start: float, duration: float) -> float:
    """Mean over [start, start + duration) by summing one-second slices."""
    seconds = np.arange(int(start), int(start + duration))
    return float(np.mean(np.asarray(values)[seconds // int(H)]))


# -- the registry ----------------------------------------------------------------------------


def test_the_registry_lists_every_policy_simplest_first() -> None:
    assert policy_names() == (
        "now",
        "threshold",
        "window",
        "window-once",
        "interruptible",
        "fleet",
        "oracle",
    )
    assert policy_names(online=True) == policy_names()[:-1]  # the oracle needs the future
    assert all(p.summary and p.name == get_policy(p.name).name for p in all_policies())


def test_an_unknown_or_offline_name_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"policy: unknown 'magic' \(choose from now, "):
        get_policy("magic")
    with pytest.raises(ConfigError, match="unknown 'oracle'"):
        get_policy("oracle", online=True)


def test_a_name_cannot_be_registered_twice_by_another_class() -> None:
    window = type(get_policy("window"))

    class Impostor(window):  # type: ignore[misc,valid-type]
        pass

    with pytest.raises(ValueError, match="registered twice"):
        register(Impostor)
    assert type(get_policy("window")) is window


# -- window ----------------------------------------------------------------------------------


def test_window_picks_the_cheapest_window_even_mid_step() -> None:
    # 90-min job submitted at 00:30: the cheapest 90 min are 02:00-03:30 (mean 1.0).
    planned = one("window", job(1800, 5400, 6 * H), view([9, 9, 1, 1, 9, 9, 9, 9, 9]), 1800)
    assert (planned.starts[0], planned.expected[0]) == (2 * H, 1.0)
    assert planned.reasons[0] == "best window starts 2023-01-01T02:00:00Z (mean 1.0 vs 9.0 now)"
    # End-aligned optimum: a 90-min job whose cheap step is short must straddle it exactly.
    planned = one("window", job(0, 5400, 6 * H), view([9, 9, 1, 5, 9, 9, 9, 9]), 0)
    assert planned.starts[0] == 2 * H
    assert planned.expected[0] == (1 * 3600 + 5 * 1800) / 5400


def test_window_starts_now_when_now_is_best_and_at_latest_start() -> None:
    now_best = one("window", job(0, H, 3 * H), view([1, 5, 5, 5, 5]), 0)
    assert now_best.starts[0] == 0 and now_best.reasons[0] == "best window starts now (mean 1.0)"
    forced = one("window", job(0, H, 3 * H), view([9, 1, 1, 1, 1]), 3 * H)
    assert forced.starts[0] == 3 * H and "slack spent" in forced.reasons[0]
    assert math.isnan(forced.expected[0])


def test_window_waits_for_a_typical_future_beyond_a_dirty_horizon() -> None:
    # Visible hours are all dirty (9) and the job has 10 h of slack: the policy expects the
    # usual value (fill=3) later, so it defers instead of starting into the dirty window.
    assert one("window", job(0, H, 10 * H), view([9, 9, 9], fill=3.0), 0).starts[0] > 0
    # A clean visible hour beats the unknown future.
    assert one("window", job(0, H, 10 * H), view([1, 9, 9], fill=3.0), 0).starts[0] == 0


def test_window_does_not_chase_a_later_window_whose_advantage_is_within_the_noise() -> None:
    # Now is observed at 99; a later hour is forecast at 95, but with a 10 g/kWh error while
    # the intensity itself varies by only 5 g/kWh.
    values = [99.0, 105.0, 95.0, 105.0]
    assert one("window", job(0, H, 3 * H), view(values), 0).starts[0] == 2 * H  # face value
    noisy = view(values, spread=[0, 10, 10, 10], signal_sd=5.0)
    planned = one("window", job(0, H, 3 * H), noisy, 0)
    # 95 is shrunk toward the reach's mean (101) by 25 / (25 + 100) = 0.2: 99.8, above now.
    assert planned.starts[0] == 0 and planned.expected[0] == 99.0
    # A clear advantage still wins: 50 shrinks to 61, well below 99.
    clear = view([99.0, 105.0, 50.0, 105.0], spread=[0, 10, 10, 10], signal_sd=5.0)
    assert one("window", job(0, H, 3 * H), clear, 0).starts[0] == 2 * H


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.integers(0, 50), min_size=2, max_size=12),
    submit_min=st.integers(0, 120),
    duration_min=st.integers(1, 300),
    slack_min=st.integers(0, 600),
    fill=st.none() | st.integers(0, 50),
    signal_sd=st.none() | st.floats(0, 100),
)
def test_window_without_forecast_error_is_the_plain_rule(
    values: list[int],
    submit_min: int,
    duration_min: int,
    slack_min: int,
    fill: int | None,
    signal_sd: float | None,
) -> None:
    floats = [float(v) for v in values]
    target = job(submit_min * 60.0, duration_min * 60.0, slack_min * 60.0)
    now = submit_min * 60.0
    plain = one("window", target, view(floats, fill=fill), now)
    for seen in (
        view(floats, fill=fill, spread=[0.0] * len(floats), signal_sd=signal_sd),
        view(floats, fill=fill, spread=[5.0] * len(floats), signal_sd=None),  # no prior
    ):
        planned = one("window", target, seen, now)
        assert planned.starts.tolist() == plain.starts.tolist()
        np.testing.assert_array_equal(planned.expected, plain.expected)


def test_window_once_only_commits_inside_the_forecast() -> None:
    policy = get_policy("window-once")
    assert policy.commits and not get_policy("window").commits
    assert one("window-once", job(0, H, 10 * H), view([9, 9, 1]), 0).starts[0] == 2 * H
    too_long = one("window-once", job(0, 5 * H, 10 * H), view([9, 9, 1]), 0)
    assert too_long.starts[0] == 0 and "no whole window" in too_long.reasons[0]


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.integers(0, 50), min_size=4, max_size=12),
    submit_min=st.integers(0, 120),
    duration_min=st.integers(1, 150),
    slack_min=st.integers(0, 200),
)
def test_window_and_oracle_match_brute_force_on_the_minute_grid(
    values: list[int], submit_min: int, duration_min: int, slack_min: int
) -> None:
    floats = [float(v) for v in values]
    submit, duration, slack = submit_min * 60.0, duration_min * 60.0, slack_min * 60.0
    if submit + duration + slack > len(values) * H:
        return
    candidates = [submit + m * 60.0 for m in range(slack_min + 1)]
    best = min(brute_mean(floats, s, duration) for s in candidates)
    grid = Grid(floats, H)
    target = job(submit, duration, slack)
    oracle = one("oracle", target, view(floats), 0.0)
    assert oracle.pieces is not None
    [(start, end)] = oracle.pieces[0] or ()
    assert submit <= start <= submit + slack and end - start == duration
    assert float(grid.mean(start, duration)) <= best + 1e-9
    planned = float(one("window", target, view(floats), submit).starts[0])
    chosen, optimum = grid.mean(planned, duration), grid.mean(start, duration)
    assert abs(float(chosen) - float(optimum)) < 1e-9


# -- threshold and now -----------------------------------------------------------------------


def test_threshold_starts_below_defers_above_and_is_forced_at_latest_start() -> None:
    target = job(1800, H, 2 * H, threshold=5)
    started = one("threshold", target, view([4, 9, 9, 9]), 1800)
    assert started.starts[0] == 1800 and started.reasons[0] == "intensity 4 <= threshold 5"
    assert started.expected[0] == 4
    deferred = one("threshold", target, view([6, 9, 9, 9]), 1800)
    assert deferred.starts[0] == 2 * H + 1800  # nothing clean in view: the latest start
    assert "no period at or below it is expected" in deferred.reasons[0]
    forced = one("threshold", target, view([9, 9, 9, 9]), 2 * H + 1800)
    assert forced.starts[0] == 2 * H + 1800 and "slack is spent" in forced.reasons[0]


def test_threshold_plans_the_first_clean_period_and_names_it() -> None:
    planned = one("threshold", job(0, H, 5 * H, threshold=150), view([212, 200, 140, 100]), 0)
    assert planned.starts[0] == 2 * H and math.isnan(planned.expected[0])
    assert planned.reasons[0] == (
        "intensity 212 > threshold 150; first period expected at or below: "
        "2023-01-01T02:00:00Z (140)"
    )
    # A clean period after the latest start is no plan: the latest start is.
    late = one("threshold", job(0, H, H, threshold=150), view([212, 200, 140, 100]), 0)
    assert late.starts[0] == H and "no period" in late.reasons[0]


def test_threshold_without_its_own_value_uses_the_typical_one() -> None:
    assert one("threshold", job(1800, H, 2 * H), view([6, 9], fill=7.0), 1800).starts[0] == 1800
    assert one("threshold", job(1800, H, 2 * H), view([8, 9], fill=7.0), 1800).starts[0] > 1800


def test_threshold_decides_jobs_with_different_thresholds_in_one_batch() -> None:
    jobs = [job(0, H, 4 * H, threshold=t) for t in (300, 150, 50)]
    planned = plan("threshold", jobs, view([212, 200, 140, 100]), 0)
    assert planned.starts.tolist() == [0, 2 * H, 4 * H]


def test_now_starts_at_submit() -> None:
    planned = plan("now", [job(100, H, H), job(50, H, H)], view([1.0]), 100)
    assert planned.starts.tolist() == [100, 100]
    assert planned.reasons == ["starts at submit"] * 2


# -- interruptible ---------------------------------------------------------------------------


def test_pieces_run_in_the_cheapest_slots_and_only_up_to_the_next_boundary() -> None:
    target = job(0, 1.5 * H, 3 * H, interruptible=True)
    values = [1, 9, 2, 9, 9, 9]
    first = one("interruptible", target, view(values), 0)
    assert first.run_for is not None and first.pieces is not None
    assert first.run_for[0] == H  # step 0 is the cheapest, run it whole
    assert first.pieces[0] == ((0, H), (2 * H, 2.5 * H))
    waiting = job(0, 1.5 * H, 3 * H, interruptible=True, remaining=0.5 * H)
    paused = one("interruptible", waiting, view(values), H)
    assert paused.run_for is not None and paused.pieces is not None
    assert paused.run_for[0] == 0 and paused.pieces[0] == ((2 * H, 2.5 * H),)
    assert paused.starts[0] == 2 * H  # when the next piece starts
    oracle = one("oracle", target, view(values), 0)
    assert oracle.pieces is not None and oracle.pieces[0] == ((0, H), (2 * H, 2.5 * H))


def test_pieces_are_forced_when_slack_is_spent_and_use_fill_beyond_the_horizon() -> None:
    forced = one("interruptible", job(0, 2 * H, 2 * H, interruptible=True), view([9] * 4), 2 * H)
    assert forced.run_for is not None and forced.run_for[0] == H
    assert "no slack" in forced.reasons[0]
    # Visible steps are dirty, the usual value is low and there is time: wait.
    waiting = one(
        "interruptible", job(0, 2 * H, 2 * H, interruptible=True), view([9, 9], 0, 2.0), 0
    )
    assert waiting.run_for is not None and waiting.run_for[0] == 0


def test_interruptible_plans_whole_jobs_as_window_does() -> None:
    values = [9, 9, 1, 1, 9, 9]
    jobs = [job(0, H, 4 * H), job(0, H, 4 * H, interruptible=True)]
    mixed = plan("interruptible", jobs, view(values), 0)
    whole = plan("window", jobs[:1], view(values), 0)
    assert mixed.starts[0] == whole.starts[0] and mixed.reasons[0] == whole.reasons[0]
    assert mixed.run_for is not None and math.isnan(mixed.run_for[0])
    assert mixed.run_for[1] == 0 and mixed.starts[1] == 2 * H
