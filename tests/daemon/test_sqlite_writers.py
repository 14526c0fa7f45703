"""Two processes writing one SQLite database (the daemon's API and loop): one writer at a time
through a lock file, handed over when released, and the log checkpointed by the loop alone."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
from pathlib import Path

from greenai.storage.database import WriteLock, checkpoint, make_engine, upgrade, write_lock
from greenai.storage.store import Store
from tests.daemon.helpers import T0, new_job

HOLD = """
import sys, time
from pathlib import Path
from greenai.storage.database import make_engine, write_lock
lock = write_lock(make_engine("sqlite:///" + sys.argv[1]))
with lock:
    print("holding", flush=True)
    while not Path(sys.argv[2]).exists():
        time.sleep(0.01)
"""


def test_a_writer_waits_for_another_process_holding_the_write_lock(tmp_path: Path) -> None:
    database, release = tmp_path / "greenai.db", tmp_path / "release"
    store = Store(make_engine(f"sqlite:///{database}"))
    upgrade(store.engine)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(database), str(release)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        written = threading.Event()

        def submit() -> None:
            store.submit(new_job(), T0)
            written.set()

        writer = threading.Thread(target=submit)
        writer.start()
        assert not written.wait(0.5)  # held by the other process: the write waits
        release.touch()
        assert written.wait(20)  # released: the write goes through
        writer.join()
    finally:
        release.touch()
        holder.wait(timeout=20)
        if holder.stdout is not None:
            holder.stdout.close()
    assert store.list_jobs()[1] == 1
    lock_file = tmp_path / "greenai.db.lock"
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
    store.engine.dispose()


def test_an_in_memory_database_and_postgresql_take_no_lock_file(tmp_path: Path) -> None:
    with WriteLock(None):  # in memory: threads still queue on it, no file
        pass
    assert write_lock(make_engine("postgresql://u@127.0.0.1:1/x")) is None
    assert list(tmp_path.iterdir()) == []


def test_the_api_process_leaves_checkpoints_to_the_loop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'greenai.db'}"
    api, loop = make_engine(url, checkpoints=False), make_engine(url)
    upgrade(loop)
    with api.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    with loop.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    store = Store(api)
    for _ in range(50):
        store.submit(new_job(), T0)
    wal = tmp_path / "greenai.db-wal"
    with api.connect() as connection:  # pages the log holds beyond the last checkpoint
        before = connection.exec_driver_sql("PRAGMA wal_checkpoint(NOOP)").all()
    checkpoint(loop)
    with api.connect() as connection:
        after = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    assert wal.exists() and before
    assert after[1] == after[2]  # every frame in the log is now in the database
    api.dispose()
    loop.dispose()
