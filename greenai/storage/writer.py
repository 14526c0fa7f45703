"""Group commit for submissions: one writer thread, one transaction per batch.

Concurrent requests hand their ``Submission`` to ``SubmitWriter`` and wait; the writer takes
everything queued (up to ``max_batch``), stores it with ``Store.submit_many`` in one
transaction and answers each request only after that commit, so an answer still means the job
is stored. One commit then pays for many submissions instead of one each.

Failures: a batch that fails as a whole (the database refuses the write) fails every request
in it and writes nothing of it. An ``IntegrityError`` means another writer stored one of the
batch's idempotency keys meanwhile; the batch is then retried one submission at a time, so
each gets the job its key made. ``stop`` refuses new submissions, writes everything queued,
then returns.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from greenai.core.time import utc_now
from greenai.storage.records import JobRecord, Submission
from greenai.storage.store import Store

log = logging.getLogger(__name__)

Submitted = tuple[JobRecord, bool]


class WriterStopped(RuntimeError):
    """A submission reached a writer that has stopped (the daemon is shutting down)."""


@dataclass(slots=True)
class _Pending:
    """One queued submission and where its answer goes: a thread's future, or an asyncio
    future with its loop (answered from the loop's own thread)."""

    new: Submission
    now: datetime
    future: Future[Submitted] | asyncio.Future[Submitted]
    loop: asyncio.AbstractEventLoop | None = None


class SubmitWriter:
    """Stores submissions for many threads and event loops in group-committed batches."""

    def __init__(self, store: Store, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[list[_Pending] | None] = queue.SimpleQueue()
        self._buffers: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        self._closing = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="submit-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new submissions, write every queued one, then return (idempotent)."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if self._thread.ident is None:  # never started: drain here
            self._run()
        else:
            self._thread.join(timeout)

    def submit(self, new: Submission, now: datetime | None = None) -> Future[Submitted]:
        """Queue ``new``; the future gives ``(job, created)`` once its batch is committed."""
        future: Future[Submitted] = Future()
        self._put([_Pending(new, now or utc_now(), future)])
        return future

    async def submit_async(self, new: Submission, now: datetime | None = None) -> Submitted:
        """``submit`` for a coroutine: awaits the commit without holding a thread.

        The submissions of one pass of the event loop reach the writer together (one hand-off
        and one wake-up of the writer thread for all of them, not one each)."""
        if self._closed:
            raise WriterStopped("the submission writer has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Submitted] = loop.create_future()
        buffered = self._buffers.get(loop)
        if buffered is None:
            buffered = self._buffers[loop] = []
            loop.call_soon(self._flush, loop)
        buffered.append(_Pending(new, now or utc_now(), future, loop))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        buffered = self._buffers.pop(loop)
        try:
            self._put(buffered)
        except WriterStopped as exc:
            _answer(buffered, [exc] * len(buffered))

    def _put(self, pendings: list[_Pending]) -> None:
        with self._closing:
            if self._closed:
                raise WriterStopped("the submission writer has stopped")
            self._queue.put(pendings)

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._next_batch()
            if batch:
                self._write(batch)

    def _next_batch(self) -> tuple[list[_Pending], bool]:
        """Block for submissions, then take whatever else is already queued."""
        item = self._queue.get()
        batch: list[_Pending] = []
        while item is not None:
            batch.extend(item)
            if len(batch) >= self.max_batch:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _write(self, batch: list[_Pending]) -> None:
        try:
            results = self.store.submit_many([(p.new, p.now) for p in batch])
        except IntegrityError:
            log.info("a key of %d submissions was stored meanwhile; one at a time", len(batch))
            self._write_one_by_one(batch)
        except Exception as exc:  # the whole batch failed: so does every request in it
            log.error("storing %d submissions failed: %s", len(batch), exc)
            _answer(batch, [exc] * len(batch))
        else:
            _answer(batch, results)

    def _write_one_by_one(self, batch: list[_Pending]) -> None:
        outcomes: list[Submitted | BaseException] = []
        for pending in batch:
            try:
                outcomes.append(self.store.submit(pending.new, pending.now))
            except Exception as exc:
                outcomes.append(exc)
        _answer(batch, outcomes)


def _answer(batch: Sequence[_Pending], outcomes: Sequence[Submitted | BaseException]) -> None:
    """Resolve each future; asyncio ones with one wake-up of their loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
    for pending, outcome in zip(batch, outcomes, strict=True):
        if pending.loop is None:
            _settle(pending.future, outcome)
        else:
            by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_all, settled)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            log.warning("%d submissions answered after their event loop closed", len(settled))


def _settle_all(settled: list[tuple[Any, Any]]) -> None:
    for future, outcome in settled:
        _settle(future, outcome)


def _settle(future: Future[Submitted] | asyncio.Future[Submitted], outcome: Any) -> None:
    setter: Callable[[Any], None]
    if future.cancelled():
        return
    setter = future.set_exception if isinstance(outcome, BaseException) else future.set_result
    setter(outcome)
