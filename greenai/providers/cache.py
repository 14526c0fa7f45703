"""The last good forecast per (provider, region), on disk, to ride out a provider outage.

One small JSON file per key, written atomically (temp file + ``os.replace``) so a crash never
leaves half a file; a file that cannot be read is ignored with a warning, never a crash: the
cache is an optimisation, and losing it only means falling further down the chain.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from greenai.core.domain import Forecast, Signal
from greenai.core.time import format_time, parse_time

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def forecast_to_json(forecast: Forecast) -> dict[str, Any]:
    return {
        "start": format_time(forecast.start),
        "step_s": forecast.step.total_seconds(),
        "values": list(forecast.values),
        "signal": forecast.signal.value,
        "source": forecast.source,
        "region": forecast.region,
        "issued_at": format_time(forecast.issued_at),
        "static": forecast.static,
        "warnings": list(forecast.warnings),
    }


def forecast_from_json(data: dict[str, Any]) -> Forecast:
    """The inverse of ``forecast_to_json``; raises KeyError/ValueError/TypeError on junk."""
    return Forecast(
        start=parse_time(data["start"]),
        step=timedelta(seconds=float(data["step_s"])),
        values=tuple(float(v) for v in data["values"]),
        signal=Signal(data["signal"]),
        source=str(data["source"]),
        region=str(data["region"]),
        issued_at=parse_time(data["issued_at"]),
        static=bool(data["static"]),
        warnings=tuple(str(w) for w in data["warnings"]),
    )


class ForecastCache:
    """Stores forecasts under ``directory``; serves one while it covers ``now`` and its
    ``saved_at`` is younger than ``max_age``."""

    def __init__(self, directory: Path, max_age: timedelta) -> None:
        self.directory = directory
        self.max_age = max_age

    def path_for(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:60]
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self.directory / f"forecast-{safe}-{digest}.json"

    def save(self, key: str, forecast: Forecast, saved_at: datetime) -> None:
        """Write atomically; a failure to write is logged, not raised (the answer is good)."""
        body = {"version": FORMAT_VERSION, "key": key, "saved_at": format_time(saved_at)}
        body["forecast"] = forecast_to_json(forecast)
        target = self.path_for(key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        except OSError as exc:
            logger.warning("cache: cannot write in %s: %s", self.directory, exc)
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle)
            os.replace(temp, target)
        except OSError as exc:
            logger.warning("cache: cannot write %s: %s", target, exc)
            Path(temp).unlink(missing_ok=True)

    def load(self, key: str, now: datetime) -> tuple[Forecast, datetime] | None:
        """``(forecast from now on, saved_at)`` if a fresh forecast covering ``now`` is kept."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            saved_at = parse_time(body["saved_at"])
            forecast = forecast_from_json(body["forecast"])
            if body.get("key") != key:
                raise ValueError(f"holds key {body.get('key')!r}")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("cache: ignoring unreadable %s: %s", path, exc)
            return None
        if now - saved_at > self.max_age or not forecast.covers(now):
            logger.debug("cache: %s is stale or does not cover now", key)
            return None
        return forecast.since(now), saved_at
