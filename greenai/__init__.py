"""greenai: run jobs when the grid is cleanest, without missing deadlines, with evidence."""

from greenai.advice import best_window, should_run
from greenai.domain import (
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
