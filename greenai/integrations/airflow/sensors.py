"""Wait, deferred, for the greenest start greenai's policies find, then go on.

The decision is made in the worker (greenai's providers and policies, ``window.py``); the
wait runs in the triggerer (``GreenStartTrigger``), so no worker slot is held.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context

from greenai.core.time import format_time, parse_time, utc_now
from greenai.integrations.airflow.triggers import GreenStartTrigger
from greenai.integrations.airflow.window import (
    GreenStart,
    as_deadline,
    as_seconds,
    find_green_start,
    greenai_time,
)

DECISION_KEY = "green_decision"  # XCom: the decision, as the decision log writes it
RESUMED_KEY = "green_resumed_at"  # XCom: greenai's time when the wait ended


class CarbonAwareOperator(BaseOperator):
    """Finds the greenest start for work of ``duration`` that must finish by ``deadline``
    (else start within ``max_delay``), or (``policy="threshold"``) the first period at or
    under ``threshold`` gCO2e/kWh; defers until then; then calls ``execute_green``.

    ``provider`` is a greenai provider chain (``"uk:13,egrid:RFCE"``); ``greenai_settings``
    are other greenai settings by name (``trace_start``, ``trace_speed``, ``check_interval``);
    the rest comes from the worker's ``GREENAI_*`` environment as for ``greenai run``."""

    template_fields: Sequence[str] = ("duration", "deadline", "max_delay", "threshold")

    def __init__(
        self,
        *,
        duration: str | None = None,
        deadline: datetime | str | None = None,
        max_delay: timedelta | float | str | None = None,
        policy: str = "window",
        threshold: float | None = None,
        provider: str | None = None,
        greenai_settings: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.duration = duration
        self.deadline = deadline
        self.max_delay = max_delay
        self.policy = policy
        self.threshold = threshold
        self.provider = provider
        self.greenai_settings = dict(greenai_settings or {})

    def execute(self, context: Context) -> Any:
        return self._wait_or_go(context, self._decide(as_deadline(self.deadline)))

    def resume(self, context: Context, event: dict[str, Any]) -> Any:
        """Back from the trigger: go on, or decide again when nothing was planned."""
        green = event["green"]
        now = greenai_time(green, parse_time(event["deferred_wall"]))
        if not green["final"]:
            deadline = parse_time(green["decision"]["deadline"])
            return self._wait_or_go(context, self._decide(deadline, now))
        self.log.info(
            "greenai: resumed at %s (planned start %s)",
            format_time(now),
            green["decision"]["planned_start"],
        )
        context["ti"].xcom_push(key=RESUMED_KEY, value=format_time(now))
        return self.execute_green(context, {**green, "resumed_at": format_time(now)})

    def execute_green(self, context: Context, green: dict[str, Any]) -> Any:
        """The work, at the green start; ``green`` is the decision's XCom. Subclasses
        override it; this one returns ``green`` (the task's return value XCom)."""
        return green

    def _decide(self, deadline: datetime | None, now: datetime | None = None) -> GreenStart:
        return find_green_start(
            duration=self.duration,
            policy=self.policy,
            threshold=None if self.threshold is None else float(self.threshold),
            deadline=deadline,
            max_delay_s=None if deadline else as_seconds(self.max_delay),
            provider=self.provider,
            settings=self.greenai_settings,
            now=now,
        )

    def _wait_or_go(self, context: Context, start: GreenStart) -> Any:
        green = start.as_xcom()
        decision = start.decision
        self.log.info(
            "greenai %s: %s; planned start %s (provider %s, region %s, signal %s, fallback %s)",
            decision.action.value,
            decision.reason,
            format_time(decision.planned_start),
            decision.provider,
            decision.region,
            decision.signal.value if decision.signal else None,
            decision.fallback,
        )
        context["ti"].xcom_push(key=DECISION_KEY, value=green)
        if start.wall_wait_s <= 0:
            context["ti"].xcom_push(key=RESUMED_KEY, value=format_time(decision.at))
            return self.execute_green(context, {**green, "resumed_at": format_time(decision.at)})
        wall_now = utc_now()
        moment = wall_now + timedelta(seconds=start.wall_wait_s)
        self.log.info(
            "greenai: deferring %.1f s on the wall (%.0f s of greenai time), until %s",
            start.wall_wait_s,
            start.wait_s,
            format_time(moment),
        )
        trigger = GreenStartTrigger(format_time(moment) or "", green, format_time(wall_now) or "")
        self.defer(trigger=trigger, method_name="resume")


class GreenWindowSensor(CarbonAwareOperator):
    """Succeeds at the green start (``CarbonAwareOperator`` with nothing to do then): put it
    upstream of the work. Its return value XCom is the decision and ``resumed_at``."""
