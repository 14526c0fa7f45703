"""``greenai serve``: the API process (``service``), the loop process (``loop``) and what
both are built from (``wiring``).

Names load lazily: the loop process imports ``greenai.daemon.loop`` and must not pay for the
API's web stack (FastAPI, uvicorn) in its memory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from greenai.daemon.service import Daemon, allowed_hosts, check_bind, is_loopback
    from greenai.daemon.wiring import (
        DEFAULT_POLICY,
        EXECUTORS,
        EvidenceFiles,
        build_engine,
        build_executor,
        daemon_policy,
        default_sources,
        open_store,
    )

_HOMES = {
    "Daemon": "service",
    "allowed_hosts": "service",
    "check_bind": "service",
    "is_loopback": "service",
    "DEFAULT_POLICY": "wiring",
    "EXECUTORS": "wiring",
    "EvidenceFiles": "wiring",
    "build_engine": "wiring",
    "build_executor": "wiring",
    "daemon_policy": "wiring",
    "default_sources": "wiring",
    "open_store": "wiring",
}

__all__ = [
    "DEFAULT_POLICY",
    "EXECUTORS",
    "Daemon",
    "EvidenceFiles",
    "allowed_hosts",
    "build_engine",
    "build_executor",
    "check_bind",
    "daemon_policy",
    "default_sources",
    "is_loopback",
    "open_store",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'greenai.daemon' has no attribute {name!r}")
    return getattr(importlib.import_module(f"greenai.daemon.{home}"), name)
