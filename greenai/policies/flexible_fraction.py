"""The flexible fraction as a setting of whichever front-end plans: ``simulate``'s
``--max-flexible-fraction`` and the daemon's ``max_flexible_fraction`` configure ``fleet``
the same way, and refuse it for a policy that has no such knob."""

from __future__ import annotations

from dataclasses import replace

from greenai.core.errors import ConfigError
from greenai.policies.base import Policy
from greenai.policies.fleet import Fleet


def with_flexible_fraction(policy: Policy, fraction: float | None) -> Policy:
    """``policy`` deferring at most ``fraction`` of the queued GPU-hours (``None``: as it is)."""
    if fraction is None:
        return policy
    if not isinstance(policy, Fleet):
        raise ConfigError(f"max_flexible_fraction applies to policy fleet only, not {policy.name}")
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"max_flexible_fraction must be between 0 and 1, not {fraction}")
    return Fleet(replace(policy.settings, max_flexible_fraction=fraction))
