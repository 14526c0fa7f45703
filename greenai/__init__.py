"""greenai: run jobs when the grid is cleanest, without missing deadlines, with evidence.

The package root imports lazily: ``import greenai`` loads nothing else, and each name below is
imported the first time it is used, so a program that only needs the domain types (or the CLI
that needs one command) never pays for the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "Action",
    "Decision",
    "EnergyReading",
    "Forecast",
    "IntensityPoint",
    "Job",
    "JobState",
    "RunRecord",
    "Signal",
    "best_window",
    "should_run",
]

_HOMES = {
    "best_window": "greenai.oneshot.advice",
    "should_run": "greenai.oneshot.advice",
    **dict.fromkeys(
        (name for name in __all__ if name[0].isupper()),
        "greenai.core.domain",
    ),
}

if TYPE_CHECKING:
    from greenai.core.domain import (
        Action,
        Decision,
        EnergyReading,
        Forecast,
        IntensityPoint,
        Job,
        JobState,
        RunRecord,
        Signal,
    )
    from greenai.oneshot.advice import best_window, should_run


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'greenai' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
