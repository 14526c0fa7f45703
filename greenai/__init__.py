"""greenai: run jobs when the grid is cleanest, without missing deadlines, with evidence."""

from greenai.core.domain import (
    Action,
    Decision,
    EnergyReading,
    Forecast,
    IntensityPoint,
    JobSpec,
    JobState,
    Plan,
    RunRecord,
    Signal,
)
from greenai.oneshot.advice import best_window, should_run

__all__ = [
    "Action",
    "Decision",
    "EnergyReading",
    "Forecast",
    "IntensityPoint",
    "JobSpec",
    "JobState",
    "Plan",
    "RunRecord",
    "Signal",
    "best_window",
    "should_run",
]
