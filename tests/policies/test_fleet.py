"""Fleet policies against brute force and hand-worked cases: exact, earliest, deadline-safe."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.policies.interruptible import plan_pieces
from greenai.policies.now import plan_now
from greenai.policies.oracle import oracle_pieces, oracle_start
from greenai.policies.threshold import plan_threshold
from greenai.policies.view import ForecastView, JobTimes
from greenai.policies.window import plan_window, plan_window_once
from greenai.policies.windows import Grid

H = 3600.0


def view(
    values: list[float],
    origin: float = 0.0,
    fill: float | None = None,
    spread: list[float] | None = None,
    signal_sd: float | None = None,
) -> ForecastView:
    errors = None if spread is None else np.asarray(spread, dtype=float)
    return ForecastView(origin, H, np.asarray(values, dtype=float), fill, errors, signal_sd)


def job(submit: float, duration: float, slack: float, interruptible: bool = False) -> JobTimes:
    return JobTimes("j", submit, duration, submit + slack + duration, interruptible)


def brute_mean(values: list[float], start: float, duration: float) -> float:
    """Mean over [start, start + duration) by summing one-second slices."""
    seconds = np.arange(int(start), int(start + duration))
    return float(np.mean(np.asarray(values)[seconds // int(H)]))


def test_window_picks_the_cheapest_window_even_mid_step() -> None:
    # 90-min job submitted at 00:30: the cheapest 90 min are 02:00-03:30 (mean 1.0).
    decision = plan_window(job(1800, 5400, 6 * H), view([9, 9, 1, 1, 9, 9, 9, 9, 9]), 1800)
    assert decision.start == 2 * H
    assert decision.expected == 1.0  # 02:00-03:30 is all at 1
    # End-aligned optimum: a 90-min job whose cheap step is short must straddle it exactly.
    decision = plan_window(job(0, 5400, 6 * H), view([9, 9, 1, 5, 9, 9, 9, 9]), 0)
    assert decision.start == 2 * H
    assert decision.expected == (1 * 3600 + 5 * 1800) / 5400


def test_window_starts_now_when_now_is_best_and_at_latest_start() -> None:
    assert plan_window(job(0, H, 3 * H), view([1, 5, 5, 5, 5]), 0).start == 0
    forced = plan_window(job(0, H, 3 * H), view([9, 1, 1, 1, 1]), 3 * H)
    assert forced.start == 3 * H and "slack spent" in forced.reason


def test_window_waits_for_a_typical_future_beyond_a_dirty_horizon() -> None:
    # Visible hours are all dirty (9) and the job has 10 h of slack: the policy expects the
    # usual value (fill=3) later, so it defers instead of starting into the dirty window.
    decision = plan_window(job(0, H, 10 * H), view([9, 9, 9], fill=3.0), 0)
    assert decision.start > 0
    # A clean visible hour beats the unknown future.
    assert plan_window(job(0, H, 10 * H), view([1, 9, 9], fill=3.0), 0).start == 0


def test_window_does_not_chase_a_later_window_whose_advantage_is_within_the_noise() -> None:
    # Now is observed at 99; a later hour is forecast at 95, but with a 10 g/kWh error while
    # the intensity itself varies by only 5 g/kWh.
    values = [99.0, 105.0, 95.0, 105.0]
    exact = plan_window(job(0, H, 3 * H), view(values), 0)
    assert exact.start == 2 * H  # taken at face value, 95 < 99 lures the job
    noisy = view(values, spread=[0, 10, 10, 10], signal_sd=5.0)
    decision = plan_window(job(0, H, 3 * H), noisy, 0)
    # 95 is shrunk toward the reach's mean (101) by 25 / (25 + 100) = 0.2: 99.8, above now.
    assert decision.start == 0 and decision.expected == 99.0
    # A clear advantage still wins: 50 shrinks to 61, well below 99.
    clear = view([99.0, 105.0, 50.0, 105.0], spread=[0, 10, 10, 10], signal_sd=5.0)
    assert plan_window(job(0, H, 3 * H), clear, 0).start == 2 * H


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
    plain = plan_window(target, view(floats, fill=fill), target.submit)
    zero = view(floats, fill=fill, spread=[0.0] * len(floats), signal_sd=signal_sd)
    assert plan_window(target, zero, target.submit) == plain
    # A spread with no prior to weigh it against: the plain rule too.
    no_prior = view(floats, fill=fill, spread=[5.0] * len(floats), signal_sd=None)
    assert plan_window(target, no_prior, target.submit) == plain


def test_window_once_only_commits_inside_the_forecast() -> None:
    once = plan_window_once(job(0, H, 10 * H), view([9, 9, 1]), 0)
    assert once.start == 2 * H
    too_long = plan_window_once(job(0, 5 * H, 10 * H), view([9, 9, 1]), 0)
    assert too_long.start == 0 and "no whole window" in too_long.reason


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
    start = oracle_start(target, grid)
    assert submit <= start <= submit + slack
    assert float(grid.mean(start, duration)) <= best + 1e-9
    planned = plan_window(target, view(floats), submit)
    assert (
        abs(
            float(grid.mean(max(planned.start, submit), duration))
            - float(grid.mean(start, duration))
        )
        < 1e-9
    )


def test_threshold_starts_below_defers_above_and_is_forced_at_latest_start() -> None:
    target = job(1800, H, 2 * H)
    assert plan_threshold(target, view([4, 9, 9, 9]), 1800, 5).start == 1800
    deferred = plan_threshold(target, view([6, 9, 9, 9]), 1800, 5)
    assert deferred.start == H  # the next step boundary
    assert plan_threshold(target, view([9, 9, 9, 9]), 2 * H + 1800, 5).start == 2 * H + 1800
    # Without an explicit threshold the view's typical value is the bar.
    assert plan_threshold(target, view([6, 9], fill=7.0), 1800).start == 1800


def test_now_starts_at_submit() -> None:
    assert plan_now(job(100, H, H), 100).start == 100


def test_pieces_run_in_the_cheapest_slots_and_only_up_to_the_next_boundary() -> None:
    target = job(0, 1.5 * H, 4.5 * H, interruptible=True)
    values = [1, 9, 2, 9, 9, 9]
    first = plan_pieces(target, view(values), 0, target.duration)
    assert first.run_for == H  # step 0 is the cheapest, run it whole
    assert first.planned == ((0, H), (2 * H, 2.5 * H))
    paused = plan_pieces(target, view(values), H, 0.5 * H)
    assert paused.run_for == 0 and paused.planned == ((2 * H, 2.5 * H),)
    assert oracle_pieces(target, Grid(values, H)) == [(0, H), (2 * H, 2.5 * H)]


def test_pieces_are_forced_when_slack_is_spent_and_use_fill_beyond_the_horizon() -> None:
    target = job(0, 2 * H, 2 * H, interruptible=True)
    forced = plan_pieces(target, view([9, 9, 9, 9]), 2 * H, 2 * H)
    assert forced.run_for == H and "no slack" in forced.reason
    # Visible steps are dirty, the usual value is low and there is time: wait.
    waiting = plan_pieces(target, view([9, 9], fill=2.0), 0, 2 * H)
    assert waiting.run_for == 0
