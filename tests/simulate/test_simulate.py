"""The simulator: exact accounting, the §3 result layout, forecasts, capacity and errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from greenai.core.errors import ConfigError, InputError
from greenai.formats.traces import load_trace
from greenai.simulate import SimulationSettings, run_files, simulate
from greenai.simulate.forecasts import lead_bias, lead_errors, make_forecast, trailing_sd
from tests.simulate.helpers import make_job, make_trace

RESULT_KEYS = [
    "policy", "forecast", "seed", "trace", "jobs", "energy_kwh", "emissions_kg",
    "baseline_emissions_kg", "savings_pct", "sla_violations", "rejected", "mean_delay_min",
    "sla_violations_rigid", "sla_violations_flexible", "p95_delay_min", "rigid_mean_delay_min",
    "rigid_p95_delay_min", "peak_gpus", "jobs_detail",
]  # fmt: skip
DETAIL_KEYS = ["id", "segments", "emissions_kg", "baseline_kg", "delay_min", "late"]


def test_accounting_is_exact_for_mid_step_starts_and_partial_steps() -> None:
    # 2 kW for 90 min from 00:30: 30 min at 100, 60 min at 200 -> 2 * (50 + 200) g = 0.5 kg.
    trace = make_trace([100, 200, 300, 400])
    result = simulate(trace, [make_job("a", 30, 90, 0, power_kw=2)], SimulationSettings("now"))
    [detail] = result["jobs_detail"]
    assert detail["segments"] == [["2023-01-01T00:30:00Z", "2023-01-01T02:00:00Z"]]
    assert detail["emissions_kg"] == pytest.approx(0.5)
    assert result["energy_kwh"] == pytest.approx(3.0)
    assert result["savings_pct"] == 0.0


def test_window_moves_a_job_into_the_clean_hours_and_reports_savings() -> None:
    trace = make_trace([400, 400, 100, 100, 400, 400])
    job = make_job("a", 0, 120, 180)
    result = simulate(trace, [job], SimulationSettings("window"))
    [detail] = result["jobs_detail"]
    assert list(result) == RESULT_KEYS and list(detail) == DETAIL_KEYS
    assert detail["segments"] == [["2023-01-01T02:00:00Z", "2023-01-01T04:00:00Z"]]
    assert (detail["emissions_kg"], detail["baseline_kg"]) == (0.2, 0.8)
    assert result["savings_pct"] == 75.0 and result["mean_delay_min"] == 120.0
    assert detail["late"] is False and result["sla_violations"] == 0


def test_interruptible_splits_and_oracle_matches_it_under_perfect_knowledge() -> None:
    trace = make_trace([100, 900, 100, 900, 900])
    job = make_job("a", 0, 120, 120, interruptible=True)
    for policy in ("interruptible", "oracle"):
        [detail] = simulate(trace, [job], SimulationSettings(policy))["jobs_detail"]
        assert detail["segments"] == [
            ["2023-01-01T00:00:00Z", "2023-01-01T01:00:00Z"],
            ["2023-01-01T02:00:00Z", "2023-01-01T03:00:00Z"],
        ]
        assert detail["emissions_kg"] == pytest.approx(0.2)


def test_capacity_queues_flexible_jobs_and_lets_rigid_ones_go_first() -> None:
    trace = make_trace([100] * 6)
    jobs = [
        make_job("long", 0, 120, 0),
        make_job("flex", 30, 60, 240),
        make_job("rigid", 60, 60, 0, flexible=False),
    ]
    result = simulate(trace, jobs, SimulationSettings("now", capacity=1))
    segments = {d["id"]: d["segments"] for d in result["jobs_detail"]}
    assert segments["rigid"] == [["2023-01-01T02:00:00Z", "2023-01-01T03:00:00Z"]]
    assert segments["flex"] == [["2023-01-01T03:00:00Z", "2023-01-01T04:00:00Z"]]
    late = {d["id"]: d["late"] for d in result["jobs_detail"]}
    assert late == {"long": False, "flex": False, "rigid": True}
    assert result["sla_violations"] == 1


def test_a_job_past_the_end_of_the_trace_is_an_input_error_naming_it(tmp_path: Path) -> None:
    trace_path = tmp_path / "trace.csv"
    rows = "".join(f"2023-01-01T{h:02d}:00:00Z,{100 + h}\n" for h in range(4))
    trace_path.write_text("timestamp,intensity\n" + rows, encoding="utf-8")
    workload = tmp_path / "w.csv"
    workload.write_text(
        "id,submit,duration_min,max_delay_min,power_kw\n"
        "ok,2023-01-01T00:00:00Z,60,60,1\nlate-job,2023-01-01T02:00:00Z,60,61,1\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        run_files(trace_path, workload, SimulationSettings())
    assert caught.value.line == 3 and "'late-job'" in str(caught.value)
    assert "past the end of trace trace.csv" in str(caught.value)


def test_bad_settings_are_config_errors() -> None:
    trace = make_trace([1, 2, 3])
    with pytest.raises(ConfigError, match="policy: unknown 'greedy' \\(choose from now, "):
        simulate(trace, [], SimulationSettings("greedy"))
    with pytest.raises(ConfigError, match="unknown forecast"):
        simulate(trace, [], SimulationSettings("window", forecast="psychic"))
    with pytest.raises(ConfigError, match=r"no f1\.\.fK"):
        simulate(trace, [], SimulationSettings("window", forecast="trace"))
    with pytest.raises(ConfigError, match="SIGMA"):
        simulate(trace, [], SimulationSettings("window", forecast="noisy:x"))
    with pytest.raises(ConfigError, match="capacity"):
        simulate(trace, [], SimulationSettings("window", capacity=0))


def test_forecast_models_show_only_what_was_knowable() -> None:
    values = [float(v) for v in range(100, 100 + 60)]
    forecasts = [[1000.0 + 10 * i + k for k in range(1, 4)] for i in range(60)]
    trace = make_trace(values, forecasts)
    recorded = make_forecast("trace", trace).view(5)
    assert recorded.values.tolist() == [105.0, 1051.0, 1052.0, 1053.0]  # actual now, then f1..f3
    persistence = make_forecast("persistence", trace, horizon_h=30).view(30)
    assert persistence.values[0] == 130.0  # the current step is observed
    assert persistence.values[1] == 107.0  # row 31 <- row 7, 24 h earlier
    assert persistence.values[29] == 111.0  # row 59 is 29 h ahead: row 59 - 48
    noisy = make_forecast("noisy:0.2", trace, seed=3)
    again = make_forecast("noisy:0.2", trace, seed=3)
    other = make_forecast("noisy:0.2", trace, seed=4)
    np.testing.assert_array_equal(noisy.view(2).values, again.view(2).values)
    assert not np.array_equal(noisy.view(2).values, other.view(2).values)
    assert noisy.view(2).values[0] == 102.0
    assert make_forecast("perfect", trace, horizon_h=2).view(58).values.tolist() == [158, 159]


def test_lead_bias_uses_only_errors_already_observed() -> None:
    actual = np.arange(20, dtype=float)
    issued = np.stack([actual, np.r_[actual[1:], np.nan] + 5.0], axis=1)  # lead 1 is 5 too high
    bias = lead_bias(issued, actual, window_h=3, step_s=3600)
    assert bias[0, 1] == 0.0 and bias[1, 1] == 0.0  # no lead-1 error known before row 2
    assert bias[2, 1] == 5.0 and bias[10, 1] == 5.0
    changed = actual.copy()
    changed[15:] += 100.0  # a different future must not change what row 10 knew
    issued_changed = np.stack([changed, np.r_[changed[1:], np.nan] + 5.0], axis=1)
    assert lead_bias(issued_changed, changed, 3, 3600)[10, 1] == bias[10, 1]


def test_error_spread_and_signal_spread_use_only_the_past() -> None:
    actual = np.tile([10.0, 20.0], 10)
    errors = np.tile([3.0, -1.0], 10)  # lead-1 errors alternate: mean 1, sample sd ~2.3
    issued = np.stack([actual, np.r_[actual[1:] + errors[1:], np.nan]], axis=1)
    bias, spread = lead_errors(issued, actual, window_h=4, step_s=3600)
    np.testing.assert_array_equal(bias, lead_bias(issued, actual, 4, 3600))
    assert spread[0, 1] == spread[2, 1] == 0.0  # fewer than two lead-1 errors known
    assert bias[10, 1] == 1.0 and spread[10, 1] == pytest.approx(np.std([3, -1] * 2, ddof=1))
    assert (spread[:, 0] == 0).all()  # lead 0 is observed
    sd = trailing_sd(actual, window_h=4, step_s=3600)
    assert sd[0] == sd[1] == 0.0 and sd[10] == pytest.approx(np.std([10, 20] * 2, ddof=1))
    changed = actual.copy()
    changed[12:] += 100.0  # a different future must not change what row 10 knew
    changed_issued = np.stack([changed, np.r_[changed[1:] + errors[1:], np.nan]], axis=1)
    assert lead_errors(changed_issued, changed, 4, 3600)[1][10, 1] == spread[10, 1]
    assert trailing_sd(changed, 4, 3600)[10] == sd[10]


def test_views_carry_their_uncertainty_except_perfect_and_raw() -> None:
    trace = make_trace([100.0 + 10 * (h % 5) for h in range(72)])
    noisy = make_forecast("noisy:0.1", trace, seed=1, horizon_h=6, debias_h=24).view(40)
    assert noisy.spread is not None and noisy.spread[0] == 0.0 and (noisy.spread[1:] > 0).all()
    assert noisy.signal_sd == pytest.approx(np.std(trace.actual[16:40], ddof=1))
    assert noisy.uncertain
    for exact in (make_forecast("perfect", trace), make_forecast("noisy:0.1", trace, seed=1)):
        assert exact.view(40).spread is None and not exact.view(40).uncertain


def test_real_trace_with_recorded_forecasts_end_to_end() -> None:
    data = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
    trace = load_trace(data / "caiso-pge-moer-2021-07.csv")
    offset = trace.start - make_job("x", 0, 1, 0).submitted_at + timedelta(days=10)
    jobs = [
        replace(job, submitted_at=job.submitted_at + offset, deadline=job.deadline + offset)
        for job in (make_job(f"j{k}", 37 * k, 45, 150) for k in range(20))
    ]
    oracle = simulate(trace, jobs, SimulationSettings("oracle"))
    for policy in ("window", "window-once", "threshold"):
        result = simulate(trace, jobs, SimulationSettings(policy, forecast="trace"))
        assert result["emissions_kg"] >= oracle["emissions_kg"] - 1e-9
        assert result["sla_violations"] == 0
