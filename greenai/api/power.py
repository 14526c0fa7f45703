"""The live draw of a running job, as its supervisor last wrote it (``power.json`` beside the
run's ``output.log``): for ``GET /jobs/{id}`` and the dashboard, never for the evidence, whose
energy comes from the meters' counters at the run's end."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from greenai.core.domain import JobState
from greenai.core.time import parse_time
from greenai.storage.records import JobRecord

logger = logging.getLogger(__name__)

POWER_FILE = "power.json"


class LivePower(BaseModel):
    """What the job's meters can tell of its draw now."""

    watts: float = Field(description="the draw now, W (NVML's power reading; the estimate's model)")
    at: datetime = Field(description="when it was read (the daemon's clock)")
    meters: str = Field(description="which meters told it, e.g. nvml or estimate")


def live_power(record: JobRecord) -> LivePower | None:
    """The running job's latest power record; ``None`` when it is not running, or has none
    yet, or its meters cannot tell (CodeCarbon and RAPL only give energy at the end)."""
    if record.state is not JobState.RUNNING or not record.log_path:
        return None
    path = Path(record.log_path).parent / POWER_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LivePower(
            watts=float(data["watts"]), at=parse_time(data["at"]), meters=str(data["meters"])
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.info("job %s: no live power from %s: %s", record.id, path, exc)
        return None
