"""Decisions as JSON (docs/formats.md §5): the one encoder, its decoder, and the decision log.

``encode_decision`` writes the line the JSONL decision log holds, and the daemon stores that
very text as the decision's payload in its database: one encoder, so the log and the database
can never disagree. Keys come in the documented order, followed by two extras: ``warnings``
(what the policy or a provider flagged, a list) and ``forecast_intensity`` (the mean intensity
the policy expected over the planned run). Times are ISO-8601 UTC with ``Z``; numbers that are
unknown, NaN or infinite are ``null``; text is UTF-8, not ASCII-escaped.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from greenai.core.domain import Action, Decision, Signal
from greenai.core.time import format_time, parse_time
from greenai.evidence.files import append_locked

logger = logging.getLogger(__name__)

DECISION_KEYS: tuple[str, ...] = (
    "at", "job_id", "policy", "action", "reason", "intensity", "threshold", "forecast_min",
    "planned_start", "deadline", "provider", "region", "signal", "fallback",
    "warnings", "forecast_intensity",
)  # fmt: skip
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    """The decision as its log object, keys in ``DECISION_KEYS`` order."""
    return {
        "at": format_time(decision.at),
        "job_id": decision.job_id,
        "policy": decision.policy,
        "action": str(decision.action),
        "reason": decision.reason,
        "intensity": _finite(decision.intensity),
        "threshold": _finite(decision.threshold),
        "forecast_min": _finite(decision.forecast_min),
        "planned_start": format_time(decision.planned_start),
        "deadline": format_time(decision.deadline),
        "provider": decision.provider,
        "region": decision.region,
        "signal": None if decision.signal is None else str(decision.signal),
        "fallback": decision.fallback,
        "warnings": list(decision.warnings),
        "forecast_intensity": _finite(decision.forecast_intensity),
    }


def with_meter_notes(decision: Decision, notes: Sequence[str]) -> Decision:
    """``decision`` with what the meters already know they cannot measure among its warnings,
    so the decision log says it too, not only the evidence row written after the run."""
    added = tuple(note for note in notes if note not in decision.warnings)
    return replace(decision, warnings=(*decision.warnings, *added)) if added else decision


def encode_decision(decision: Decision) -> str:
    """The decision as one line of JSON, without the newline."""
    return _ENCODER.encode(decision_to_dict(decision))


def decode_decision(data: str | Mapping[str, Any]) -> Decision:
    """The ``Decision`` that ``encode_decision`` wrote (text, or the object it parses to)."""
    obj = json.loads(data) if isinstance(data, str) else data
    return Decision(
        at=parse_time(obj["at"]),
        job_id=obj["job_id"],
        policy=obj["policy"],
        action=Action(obj["action"]),
        reason=obj["reason"],
        intensity=obj.get("intensity"),
        threshold=obj.get("threshold"),
        forecast_min=obj.get("forecast_min"),
        planned_start=_time(obj.get("planned_start")),
        deadline=_time(obj.get("deadline")),
        provider=obj.get("provider"),
        region=obj.get("region"),
        signal=Signal(obj["signal"]) if obj.get("signal") else None,
        fallback=obj.get("fallback"),
        warnings=tuple(obj.get("warnings") or ()),
        forecast_intensity=obj.get("forecast_intensity"),
    )


def _time(text: str | None) -> Any:
    return None if text is None else parse_time(text)


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: an unknown number is ``null``."""
    return value if value is not None and math.isfinite(value) else None


def append_decision(path: Path, decision: Decision) -> None:
    """Append one line for ``decision`` to the JSONL log at ``path``, under its lock."""
    append_decisions(path, [encode_decision(decision)])


def append_decisions(path: Path, lines: Sequence[str]) -> None:
    """Append already encoded decisions (a daemon re-plan) under one lock, in one write."""
    if lines:
        append_locked(Path(path), "\n".join(lines) + "\n", sync=False)
        logger.debug("decision log: %s +%d decision(s)", path, len(lines))
