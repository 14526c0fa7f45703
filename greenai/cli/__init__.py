"""The ``greenai`` command line: the only place that picks exit codes.

Exit codes of greenai itself (a wrapped command's own exit code passes through unchanged):

====  ==========================================================================
0     success
1     ``serve``: a part of the daemon died (a service manager should restart it)
2     usage or configuration error (bad flag, bad file, bad setting, a path that cannot be
      written, a request the daemon finds invalid)
3     no live intensity signal and ``--require-signal`` was given
4     every intensity source failed (``greenai intensity``)
5     the wrapped command could not be started (not found, not executable)
6     a client of the daemon (submit, jobs, job, cancel, status) failed: the daemon could not
      be reached, refused the token (401), has no such job (404) or refused the change (409)
130   interrupted (SIGINT) while deferring, before the command started
143   terminated (SIGTERM) while deferring, before the command started
====  ==========================================================================
"""

from __future__ import annotations

# Each module registers its commands on ``app`` when imported.
from greenai.cli import audit as _audit  # noqa: F401  (registers `audit`)
from greenai.cli import clients as _clients  # noqa: F401  (submit, jobs, job, cancel, status)
from greenai.cli import policies as _policies  # noqa: F401  (registers `policies`)
from greenai.cli import report as _report  # noqa: F401  (registers `report`)
from greenai.cli import run as _run  # noqa: F401  (registers `run` and `intensity`)
from greenai.cli import serve as _serve  # noqa: F401  (registers `serve`, `db`)
from greenai.cli import simulate as _simulate  # noqa: F401  (registers `simulate`)
from greenai.cli import where as _where  # noqa: F401  (registers `where`)
from greenai.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
