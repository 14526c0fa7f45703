"""What ``build_meter`` needs to know, as plain data another process can be handed.

A job's supervisor builds its meter in its own process, so the meter settings travel as JSON
(``dataclasses.asdict`` and ``MeterConfig.from_json``) instead of as the daemon's whole
``Settings``, and the supervisor never imports pydantic to read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from greenai.core.settings import Settings


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """Which meters to use (``auto`` or a list such as ``nvml,codecarbon``), the declared
    draw for the estimate meter, and the country CodeCarbon's offline tracker assumes."""

    meters: str = "auto"
    power_watts: float | None = None
    country_iso_code: str = "GBR"

    @property
    def may_estimate(self) -> bool:
        """Whether an estimate may stand in for a meter: ``auto`` (measure what can be,
        estimate the rest, as ``greenai run`` does) or ``estimate`` itself. An explicit list
        of meters means measured or nothing."""
        names = [part.strip().lower() for part in self.meters.split(",") if part.strip()]
        return names in ([], ["auto"], ["estimate"])

    @classmethod
    def from_settings(cls, settings: Settings) -> MeterConfig:
        return cls(settings.meters, settings.power_watts, settings.country_iso_code)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MeterConfig:
        """The inverse of ``dataclasses.asdict``; ``ValueError`` for anything else."""
        try:
            watts = data.get("power_watts")
            return cls(
                meters=str(data.get("meters", "auto")),
                power_watts=None if watts is None else float(watts),
                country_iso_code=str(data.get("country_iso_code", "GBR")),
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"not a meter config: {data!r}") from exc
