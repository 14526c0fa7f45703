"""Airflow 3 operators and triggers (the ``greenai[airflow]`` extra; deploy/airflow/README.md).

- ``GreenWindowSensor``: waits, deferred (no worker slot held), for the greenest start before
  the task's deadline (or the first period under a threshold), as greenai's own policies
  decide, and pushes that decision to XCom. ``CarbonAwareOperator`` is its base: subclass it
  and override ``execute_green`` to do the work itself at that start.
- ``GreenaiSubmitOperator``: hands a command to a greenai daemon over REST, waits for it on a
  trigger, succeeds or fails with the job, and cancels the job when the task is killed.

Names load lazily, as in the package root, so ``greenai.integrations.airflow.window`` and
``.client`` stay importable (and testable) where Airflow is not installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "CarbonAwareOperator",
    "GreenStartTrigger",
    "GreenWindowSensor",
    "GreenaiJobTrigger",
    "GreenaiSubmitOperator",
]

_HOMES = {
    "CarbonAwareOperator": "sensors",
    "GreenWindowSensor": "sensors",
    "GreenStartTrigger": "triggers",
    "GreenaiJobTrigger": "triggers",
    "GreenaiSubmitOperator": "operators",
}

if TYPE_CHECKING:
    from greenai.integrations.airflow.operators import GreenaiSubmitOperator
    from greenai.integrations.airflow.sensors import CarbonAwareOperator, GreenWindowSensor
    from greenai.integrations.airflow.triggers import GreenaiJobTrigger, GreenStartTrigger


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
