"""Checks every request passes before routing: a bounded body and a Host this daemon serves.

Plain ASGI middleware, so they run before FastAPI parses anything: a 10 MB body is refused
from its ``Content-Length`` (or once it has streamed past the limit) without being decoded.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class BodyLimit:
    """413 for a request body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send, declared.isdigit())
            return
        messages, size = [], 0
        while True:  # at most ``limit`` bytes are buffered, then the app reads them back
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send, True)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        await self.app(scope, _replay(messages, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, too_big: bool) -> None:
        if too_big:
            detail, code = f"request body is over {self.limit} bytes", 413
        else:
            detail, code = "Content-Length is not a number", 400
        await JSONResponse({"detail": detail}, status_code=code)(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """The buffered messages, then the real channel (for ``http.disconnect``)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def host_name(header: str) -> str:
    """``[::1]:8000`` -> ``::1``, ``Example.org.:80`` -> ``example.org``."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") == 1 else host.rstrip(".")


class HostCheck:
    """400 unless the ``Host`` header names this daemon: a page from a rebinding DNS name
    must not reach a daemon bound to loopback through the browser of someone on it."""

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(host_name(name) for name in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = Headers(scope=scope).get("host")
            if given is None or host_name(given) not in self.allowed:
                response = JSONResponse(
                    {"detail": "Host header: not a name this daemon serves"}, status_code=400
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
