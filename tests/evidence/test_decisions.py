"""The decision log: documented keys in order, ISO times with Z, one locked line each."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from greenai.core.domain import Action, Decision, Signal
from greenai.evidence.decisions import (
    DECISION_KEYS,
    append_decision,
    append_decisions,
    decision_to_dict,
    decode_decision,
    encode_decision,
)

T0 = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)
# docs/formats.md §5 in order, then the two documented extras.
DOCUMENTED = [
    "at", "job_id", "policy", "action", "reason", "intensity", "threshold", "forecast_min",
    "planned_start", "deadline", "provider", "region", "signal", "fallback",
]  # fmt: skip


def defer() -> Decision:
    return Decision(
        at=T0,
        job_id="j1",
        policy="threshold",
        action=Action.DEFER,
        reason="intensity 212 > threshold 150; next check in 300 s",
        intensity=212.0,
        threshold=150.0,
        forecast_min=98.0,
        planned_start=T0 + timedelta(hours=2),
        deadline=T0 + timedelta(hours=8),
        provider="uk",
        region="13",
        signal=Signal.AVERAGE,
        warnings=("forecast is 40 min old",),
        forecast_intensity=101.5,
    )


def test_keys_are_the_documented_ones_in_order_then_the_extras() -> None:
    assert list(decision_to_dict(defer())) == [*DOCUMENTED, "warnings", "forecast_intensity"]
    assert list(DECISION_KEYS) == [*DOCUMENTED, "warnings", "forecast_intensity"]


def test_values_are_plain_json_with_z_times() -> None:
    data = decision_to_dict(defer())
    assert data["at"] == "2024-05-04T12:00:00Z"
    assert data["planned_start"] == "2024-05-04T14:00:00Z"
    assert (data["action"], data["signal"], data["fallback"]) == ("defer", "average", None)
    assert data["warnings"] == ["forecast is 40 min old"]
    assert data["forecast_intensity"] == 101.5


def test_unknown_values_are_null() -> None:
    bare = Decision(T0, "j2", "window", Action.START, "no signal", intensity=float("nan"))
    data = decision_to_dict(bare)
    assert data["intensity"] is None and data["planned_start"] is None
    assert data["signal"] is None and data["warnings"] == []


def test_append_writes_one_line_per_decision(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "decisions.jsonl"
    append_decision(path, defer())
    append_decision(path, Decision(T0, "j2", "window", Action.START, "best window now"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first == decision_to_dict(defer())
    assert (second["job_id"], second["action"]) == ("j2", "start")
    assert list(first) == list(DECISION_KEYS)


def test_many_decisions_are_appended_in_order_in_one_write(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    first, second = replace(defer(), job_id="a"), replace(defer(), job_id="b")
    append_decisions(path, [encode_decision(first), encode_decision(second)])
    append_decisions(path, [])
    text = path.read_text(encoding="utf-8")
    assert text.splitlines() == [encode_decision(first), encode_decision(second)]


def test_one_encoder_keeps_utf8_and_turns_nan_and_infinity_into_null() -> None:
    odd = replace(
        defer(),
        reason="intensité 212 > seuil 150 (Zürich, 東京)",
        intensity=float("nan"),
        forecast_min=float("inf"),
    )
    line = encode_decision(odd)
    assert "Zürich, 東京" in line and "\\u" not in line  # text, not ASCII escapes
    assert "NaN" not in line and "Infinity" not in line
    data = json.loads(line)
    assert (data["intensity"], data["forecast_min"]) == (None, None)
    assert list(data) == list(DECISION_KEYS)


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
numbers = st.none() | st.floats(allow_nan=False, allow_infinity=False, width=64)
times = st.none() | st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None)
@given(
    reason=texts,
    numbers=st.tuples(numbers, numbers, numbers, numbers),
    planned=times,
    action=st.sampled_from(list(Action)),
    warnings=st.lists(texts, max_size=3),
)
def test_decode_reads_back_exactly_what_encode_wrote(
    reason: str,
    numbers: tuple[float | None, ...],
    planned: datetime | None,
    action: Action,
    warnings: list[str],
) -> None:
    intensity, threshold, lowest, expected = numbers
    decision = replace(
        defer(),
        action=action,
        reason=reason,
        intensity=intensity,
        threshold=threshold,
        forecast_min=lowest,
        forecast_intensity=expected,
        planned_start=planned,
        warnings=tuple(warnings),
    )
    line = encode_decision(decision)
    assert decode_decision(line) == decision
    assert decode_decision(json.loads(line)) == decision
    assert encode_decision(decode_decision(line)) == line
