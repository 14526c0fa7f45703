"""The decision log (formats.md §5): one JSON object per line, one line per decision.

Keys come in the documented order, followed by two extras: ``warnings`` (what the policy or a
provider flagged, a list) and ``forecast_intensity`` (the mean intensity the policy expected
over the planned run). Times are ISO-8601 UTC with ``Z``; unknown values are ``null``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greenai.core.domain import Decision
from greenai.core.time import format_time
from greenai.evidence.files import append_locked

logger = logging.getLogger(__name__)

DECISION_KEYS: tuple[str, ...] = (
    "at", "job_id", "policy", "action", "reason", "intensity", "threshold", "forecast_min",
    "planned_start", "deadline", "provider", "region", "signal", "fallback",
    "warnings", "forecast_intensity",
)  # fmt: skip


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


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: an unknown number is ``null``."""
    return value if value is not None and math.isfinite(value) else None


def decision_line(decision: Decision) -> str:
    return json.dumps(decision_to_dict(decision), ensure_ascii=False, allow_nan=False) + "\n"


def append_decision(path: Path, decision: Decision) -> None:
    """Append one line for ``decision`` to the JSONL log at ``path``, under its lock."""
    append_locked(Path(path), decision_line(decision), sync=False)
    logger.debug("decision log: %s %s for job %s", path, decision.action, decision.job_id)


def append_decisions(path: Path, decisions: Sequence[Decision]) -> None:
    """Append many decisions (a daemon re-plan) under one lock, in one write."""
    if decisions:
        append_locked(Path(path), "".join(map(decision_line, decisions)), sync=False)
        logger.debug("decision log: %s +%d decisions", path, len(decisions))
