"""The ``Meter`` protocol: what every energy meter promises the rest of greenai.

A meter measures one run at a time per token: ``start()`` returns an opaque token,
``stop(token)`` returns the ``EnergyReading`` of everything between the two calls. Tokens let
one meter measure several overlapping runs (the daemon runs many jobs at once). Timestamps are
the injected clock's time (possibly a replayed trace); energy is what the hardware really used
(``CompositeMeter`` puts it on a replayed trace's time base, see ``replay``).
A meter that cannot measure here raises ``MeterUnavailable`` when it is built or started, never
returns 0 kWh in silence.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from greenai.core.domain import EnergyReading

JOULES_PER_KWH = 3_600_000.0


@runtime_checkable
class Meter(Protocol):
    """Measures the energy of a run; ``name`` is what the evidence ``meter`` column shows."""

    name: str

    def start(self) -> Any:
        """Begin measuring; the returned token is passed back to ``stop``."""
        ...

    def stop(self, token: Any) -> EnergyReading:
        """End the measurement begun by ``start`` and say what was used."""
        ...


def joules_to_kwh(joules: float) -> float:
    return joules / JOULES_PER_KWH
