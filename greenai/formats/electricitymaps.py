"""Electricity Maps' vocabulary, shared by the CSV-export loader (``formats.traces``) and the
API provider (``providers.electricitymaps``) where their fields agree.

Both carry, per hour, a zone, a UTC time, two intensities in gCO2eq/kWh (``direct``: the
emissions of burning fuel; ``lifecycle``: plus upstream and construction, the export's
``LCA``) and whether the value was estimated. Both are consumption-mix averages: a grid
average, never a marginal signal. One table maps the two spellings, so a ``direct`` trace and
a ``direct`` API figure are the same quantity by construction.
"""

from __future__ import annotations

from greenai.core.errors import ConfigError

SIGNAL = "average"  # Electricity Maps publishes consumption-mix averages only
FACTORS = ("lifecycle", "direct")  # the API's ``emissionFactorType`` values
DEFAULT_FACTOR = "lifecycle"  # the API's default, and the one the GHG protocol's LCA asks for
EXPORT_TIME = "Datetime (UTC)"
EXPORT_PREFIX = "Carbon Intensity gCO₂eq/kWh"
EXPORT_ESTIMATED = "Data Estimated"
_EXPORT_NAME = {"lifecycle": "LCA", "direct": "direct"}
_ALIASES = {"lifecycle": "lifecycle", "lca": "lifecycle", "direct": "direct"}
LABEL = {"lifecycle": "life-cycle", "direct": "direct"}


def factor_type(name: str) -> str:
    """``lifecycle``/``LCA``/``direct`` (any case) -> the API's name; ConfigError otherwise."""
    factor = _ALIASES.get(name.strip().lower())
    if factor is None:
        raise ConfigError(
            f"electricitymaps emission factor {name!r} is neither 'lifecycle' (LCA) nor 'direct'"
        )
    return factor


def other_factor(factor: str) -> str:
    """The factor that is not ``factor`` (the one kept beside the figure)."""
    return "direct" if factor_type(factor) == "lifecycle" else "lifecycle"


def export_column(factor: str) -> str:
    """The export's header for ``factor``: ``Carbon Intensity gCO₂eq/kWh (LCA)``."""
    return f"{EXPORT_PREFIX} ({_EXPORT_NAME[factor_type(factor)]})"


def export_name(factor: str) -> str:
    """How the export spells ``factor`` (``LCA`` or ``direct``)."""
    return _EXPORT_NAME[factor_type(factor)]
