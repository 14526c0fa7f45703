"""The one HTTP client every provider is handed: a default timeout, a User-Agent, and bounded
retries with exponential backoff (tenacity) on timeouts, connection failures and 5xx.

Retrying lives in the transport so that providers stay thin and every request gets the same
policy; rate limits (429) are not retried here because only the provider knows its limits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from greenai.core.settings import Settings

logger = logging.getLogger(__name__)

RETRIED_ERRORS = (httpx.TimeoutException, httpx.ConnectError, httpx.RemoteProtocolError)


def user_agent() -> str:
    try:
        return f"greenai/{version('greenai')}"
    except PackageNotFoundError:  # running from a source tree without metadata
        return "greenai/0"


def _is_server_error(response: httpx.Response) -> bool:
    return response.status_code >= 500


def _give_back_last(state: RetryCallState) -> httpx.Response:
    """Out of retries: return the last 5xx response (the provider reads its error body) or
    re-raise the last transport error."""
    assert state.outcome is not None
    result: httpx.Response = state.outcome.result()
    return result


def _before_sleep(state: RetryCallState) -> None:
    outcome = state.outcome
    assert outcome is not None
    if outcome.failed:
        what = type(outcome.exception()).__name__
    else:
        response: httpx.Response = outcome.result()
        what = f"HTTP {response.status_code}"
        response.close()  # this response is discarded; free its connection
    wait = state.next_action.sleep if state.next_action else 0.0
    # INFO: a retry is not yet a failure; the chain warns once if every attempt fails
    logger.info("request failed (%s), retry %d in %.1f s", what, state.attempt_number, wait)


class RetryingTransport(httpx.BaseTransport):
    """Wraps a transport; retries idempotent requests on transient failures."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        retries: int,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 8.0,
    ) -> None:
        self._inner = inner
        self._retrying = Retrying(
            stop=stop_after_attempt(retries + 1),
            wait=wait_exponential(multiplier=0.5, max=max_wait),
            retry=retry_if_exception_type(RETRIED_ERRORS) | retry_if_result(_is_server_error),
            retry_error_callback=_give_back_last,
            before_sleep=_before_sleep,
            sleep=sleep,
            reraise=True,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method not in ("GET", "HEAD"):
            return self._inner.handle_request(request)
        response: httpx.Response = self._retrying(self._inner.handle_request, request)
        return response

    def close(self) -> None:
        self._inner.close()


def build_http_client(
    settings: Settings, sleep: Callable[[float], None] = time.sleep
) -> httpx.Client:
    """The shared client: ``settings.request_timeout`` per request and
    ``settings.request_retries`` retries. ``sleep`` is injectable so tests never wait."""
    transport = RetryingTransport(httpx.HTTPTransport(), settings.request_retries, sleep=sleep)
    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(settings.request_timeout),
        headers={"User-Agent": user_agent()},
        follow_redirects=True,
    )
