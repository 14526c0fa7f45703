"""The one list of policies: every module of ``greenai.policies`` that defines a policy
registers it here with ``@register``, and the CLI choices, the REST schema's enum and
`greenai simulate` all read this registry. A new policy is one new module (plus its tests).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from greenai.core.errors import ConfigError
from greenai.policies.base import Policy

_REGISTRY: dict[str, Policy] = {}
_discovered = False
P = TypeVar("P", bound=type[Policy])


def register(cls: P) -> P:
    """Class decorator: make ``cls`` available by its ``name``."""
    name = cls.name
    known = _REGISTRY.get(name)
    if known is not None and type(known) is not cls:
        raise ValueError(f"policy {name!r} is registered twice ({type(known).__name__})")
    _REGISTRY[name] = cls()
    return cls


def _discover() -> None:
    """Import every module of this package once, so each registers its policies."""
    global _discovered
    if _discovered:
        return
    package = importlib.import_module("greenai.policies")
    for module in sorted(info.name for info in pkgutil.iter_modules(package.__path__)):
        importlib.import_module(f"greenai.policies.{module}")
    _discovered = True


def all_policies() -> tuple[Policy, ...]:
    """Every registered policy, simplest first."""
    _discover()
    return tuple(sorted(_REGISTRY.values(), key=lambda p: (p.rank, p.name)))


def policy_names(*, online: bool | None = None) -> tuple[str, ...]:
    """Registered names; ``online=True``: only those that plan from forecasts (what `greenai
    run` and the daemon can use)."""
    return tuple(p.name for p in all_policies() if online is None or p.online == online)


def get_policy(name: str, *, online: bool | None = None) -> Policy:
    """The policy called ``name``; ``ConfigError`` naming the choices otherwise."""
    choices = policy_names(online=online)
    if name not in choices:
        raise ConfigError(f"policy: unknown {name!r} (choose from {', '.join(choices)})")
    return _REGISTRY[name]
