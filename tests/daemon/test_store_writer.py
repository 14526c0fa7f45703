"""Group commit of submissions (``SubmitWriter``) on SQLite and on a real PostgreSQL.

Submissions queued before ``start`` all land in the writer's first batch, so these tests know
what shares a transaction without timing anything."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from greenai.core.errors import NotFound
from greenai.storage.records import JobRecord, Submission
from greenai.storage.store import Store
from greenai.storage.writer import SubmitWriter, WriterStopped
from tests.daemon.helpers import T0, every_field_job, new_job


def outcomes(futures: list[Future[tuple[JobRecord, bool]]]) -> list[tuple[str, bool]]:
    return [(job.id, created) for job, created in (f.result(timeout=30) for f in futures)]


def test_concurrent_retries_in_one_batch_make_one_job(store: Store) -> None:
    earlier, _ = store.submit(new_job(idempotency_key="stored-before"), T0)
    writer = SubmitWriter(store)
    retries = [writer.submit(new_job(idempotency_key="retry"), T0) for _ in range(8)]
    others = [writer.submit(new_job(), T0) for _ in range(3)]
    again = writer.submit(new_job(idempotency_key="stored-before"), T0)
    writer.start()
    writer.stop()
    answered = outcomes(retries)
    assert len({job_id for job_id, _ in answered}) == 1
    assert [created for _, created in answered] == [True] + [False] * 7
    assert all(created for _, created in outcomes(others))
    assert outcomes([again]) == [(earlier.id, False)]
    assert store.list_jobs()[1] == 1 + 1 + 3


def test_every_answer_comes_after_its_commit(store: Store) -> None:
    writer = SubmitWriter(store)
    seen: list[bool] = []

    def stored_when_answered(future: Future[tuple[JobRecord, bool]]) -> None:
        record, _ = future.result()
        try:  # read on another connection: only a committed job is visible there
            seen.append(store.get(record.id) == record)
        except NotFound:
            seen.append(False)

    futures = [writer.submit(new_job(), T0) for _ in range(5)]
    for future in futures:
        future.add_done_callback(stored_when_answered)
    writer.start()
    writer.stop()
    assert seen == [True] * 5


def test_the_writer_stores_the_submitted_job_exactly(store: Store) -> None:
    submitted = every_field_job()
    writer = SubmitWriter(store)
    future = writer.submit(Submission(submitted, "key"), T0 + timedelta(seconds=1))
    writer.start()
    writer.stop()
    record, created = future.result(timeout=30)
    assert created and record.job == submitted and record.idempotency_key == "key"
    assert store.get(submitted.id) == record
    assert record.updated_at == T0 + timedelta(seconds=1)


def test_a_failed_batch_fails_every_request_in_it_and_writes_nothing(store: Store) -> None:
    writer = SubmitWriter(store)
    good = [writer.submit(new_job(idempotency_key=f"k{n}"), T0) for n in range(3)]
    naive = datetime(2023, 5, 5, 12, 0)  # the store refuses naive times
    bad = writer.submit(new_job(), naive)
    writer.start()
    for future in [*good, bad]:
        with pytest.raises(ValueError, match="naive datetime"):
            future.result(timeout=30)
    assert store.list_jobs()[1] == 0  # nothing of the batch, not even the good ones
    later = writer.submit(new_job(idempotency_key="k0"), T0)  # the writer goes on
    writer.stop()
    assert outcomes([later])[0][1] is True
    assert store.list_jobs()[1] == 1


def test_a_constraint_failure_is_retried_one_by_one_and_fails_only_its_submission(
    sqlite_store: Store,
) -> None:
    with sqlite_store.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER poison BEFORE INSERT ON jobs WHEN NEW.name = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            )
        )
    writer = SubmitWriter(sqlite_store)
    good = [writer.submit(new_job(), T0) for _ in range(3)]
    bad = writer.submit(new_job(name="poison"), T0)
    writer.start()
    writer.stop()
    with pytest.raises(Exception, match="poisoned"):
        bad.result(timeout=30)
    stored = {job.id for job in sqlite_store.list_jobs()[0]}
    assert stored == {job_id for job_id, _ in outcomes(good)}


def test_stop_writes_everything_queued_then_refuses(sqlite_store: Store) -> None:
    writer = SubmitWriter(sqlite_store, max_batch=4)
    queued = [writer.submit(new_job(), T0) for _ in range(10)]
    writer.start()
    writer.stop()
    assert all(f.done() for f in queued)
    assert sqlite_store.list_jobs()[1] == 10
    with pytest.raises(WriterStopped):
        writer.submit(new_job(), T0)
    with pytest.raises(WriterStopped):
        asyncio.run(writer.submit_async(new_job(), T0))


def test_stop_of_a_writer_never_started_drains_in_the_caller(sqlite_store: Store) -> None:
    writer = SubmitWriter(sqlite_store)
    queued = [writer.submit(new_job(), T0) for _ in range(3)]
    writer.stop()
    assert all(created for _, created in outcomes(queued))


def test_coroutines_of_one_loop_pass_share_a_batch(sqlite_store: Store) -> None:
    writer = SubmitWriter(sqlite_store)
    writer.start()

    async def submit_all() -> list[tuple[JobRecord, bool]]:
        return await asyncio.gather(
            *(writer.submit_async(new_job(idempotency_key="same"), T0) for _ in range(6))
        )

    try:
        answered = asyncio.run(submit_all())
    finally:
        writer.stop()
    assert len({job.id for job, _ in answered}) == 1
    assert sum(created for _, created in answered) == 1
    assert sqlite_store.list_jobs()[1] == 1
