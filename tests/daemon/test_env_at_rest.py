"""Job envs are sealed at rest (``greenai.storage.env_cipher``): the key file, the stored form
on SQLite and PostgreSQL, rows no key opens, rows from before encryption, shared and rotated
keys, and what the API answers. `docs/reliability.md` ("Secrets")."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, select, text, update

from greenai.api import ApiDeps, create_app
from greenai.core.domain import JobState
from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings
from greenai.daemon import open_store
from greenai.storage.database import make_engine, upgrade
from greenai.storage.env_cipher import EnvCipher
from greenai.storage.records import Event, Submission
from greenai.storage.rows import jobs
from greenai.storage.store import Store
from tests.daemon.conftest import LiveServer
from tests.daemon.helpers import T0, job
from tests.fakes import FrozenClock

SECRET = "hf_5e1c7a-env-value-never-stored"
NAME = "SECRET_NAME_9b3d"  # names are sealed too
ENV = {NAME: SECRET, "LANG": "C.UTF-8"}


def cipher(*keys: bytes) -> EnvCipher:
    return EnvCipher(list(keys or [Fernet.generate_key()]), "a test key")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def submit(store: Store, env: dict[str, str] | None = ENV) -> str:
    record, _ = store.submit(Submission(job(env=env)), T0)
    return record.id


def stored_env(engine: Engine, job_id: str) -> str:
    """The ``jobs.env`` cell as the database holds it (JSON text)."""
    with engine.connect() as connection:
        query = text("SELECT CAST(env AS TEXT) FROM jobs WHERE id = :id")
        return str(connection.execute(query, {"id": job_id}).scalar_one())


# -- the key file ----------------------------------------------------------------------------


def test_a_missing_key_file_is_created_0600_in_a_0700_folder_and_then_reused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "home" / "env.key"
    first = EnvCipher.from_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(path.read_text().split()) == 1
    assert first.source == f"the keys in {path}"
    again = EnvCipher.from_key_file(path)
    assert again.open(first.seal(ENV)).env == ENV
    assert [p.name for p in path.parent.iterdir()] == ["env.key"]  # no temporary left


def test_daemons_creating_the_key_file_at_once_all_get_the_same_key(tmp_path: Path) -> None:
    path, start = tmp_path / "env.key", threading.Barrier(8)
    made: list[EnvCipher] = []

    def create() -> None:
        start.wait()
        made.append(EnvCipher.from_key_file(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 8 and len(path.read_text().split()) == 1
    sealed = made[0].seal(ENV)
    assert all(other.open(sealed).env == ENV for other in made)
    assert [p.name for p in tmp_path.iterdir()] == ["env.key"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [("", "holds no key"), ("# only a comment\n\n", "holds no key"), ("a-secret\n", ":1: not")],
)
def test_a_key_file_without_usable_keys_is_refused_naming_the_line(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "env.key"
    path.write_text(content)
    with pytest.raises(ConfigError, match=problem) as refused:
        EnvCipher.from_key_file(path)
    assert str(path) in str(refused.value) and "a-secret" not in str(refused.value)


@pytest.mark.parametrize("key", [Fernet.generate_key(), b"x" * 44, Fernet.generate_key()[:-2]])
def test_a_key_is_checked_by_fernets_own_test(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "env.key"
    path.write_bytes(key + b"\n")
    try:
        Fernet(key)
    except ValueError:
        with pytest.raises(ConfigError, match=":1: not a Fernet key"):
            EnvCipher.from_key_file(path)
    else:
        assert EnvCipher.from_key_file(path).open(cipher(key).seal(ENV)).env == ENV


def test_a_daemon_store_loads_cryptography_only_for_an_env(tmp_path: Path) -> None:
    """Both daemon processes open a store at start; a queue without envs never needs it."""
    code = (
        "import sys; from greenai.daemon.wiring import open_store;"
        "from greenai.core.settings import load_settings;"
        f"store = open_store(load_settings(env={{'GREENAI_HOME': {str(tmp_path)!r}}}));"
        "print('cryptography' in sys.modules);"
        "store.env_cipher.seal({'A': 'b'}); print('cryptography' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_rotation_the_first_key_seals_every_key_opens(tmp_path: Path) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    path = tmp_path / "env.key"
    path.write_bytes(old + b"\n")
    sealed_before = EnvCipher.from_key_file(path).seal(ENV)
    path.write_bytes(b"# rotated\n" + new + b"\n" + old + b"\n")
    rotated = EnvCipher.from_key_file(path)
    assert rotated.open(sealed_before).env == ENV  # rows sealed with the old key still open
    assert cipher(new).open(rotated.seal(ENV)).env == ENV  # new rows need only the new key
    assert cipher(old).open(rotated.seal(ENV)).withheld is not None


def test_the_daemons_store_uses_the_key_file_the_settings_name(tmp_path: Path) -> None:
    home, key_file = tmp_path / "home", tmp_path / "shared" / "env.key"
    default = open_store(load_settings(env={}, home=home))
    named = open_store(load_settings(env={"GREENAI_ENV_KEY_FILE": str(key_file)}, home=home))
    assert (default.env_cipher.source, named.env_cipher.source) == (
        f"the keys in {home / 'env.key'}",
        f"the keys in {key_file}",
    )
    assert key_file.is_file() and (home / "env.key").is_file()
    for store in (default, named):
        store.engine.dispose()


# -- the store -------------------------------------------------------------------------------


def test_an_env_is_stored_sealed_and_read_back_whole(engine: Engine) -> None:
    store = Store(engine, env_cipher=cipher())
    job_id = submit(store)
    none_id = submit(store, None)
    assert store.get(job_id).job.env == ENV and store.get(job_id).env_withheld is None
    assert store.get(none_id).job.env is None
    cell = stored_env(engine, job_id)
    assert '"enc"' in cell and "fernet:v1" in cell
    assert SECRET not in cell and NAME not in cell
    with engine.connect() as connection:
        assert connection.execute(select(jobs.c.env).where(jobs.c.id == none_id)).scalar() is None


def test_no_env_value_is_anywhere_in_the_sqlite_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'greenai.db'}"
    engine = make_engine(url)
    upgrade(engine)
    store = Store(engine, env_cipher=cipher())
    job_id = submit(store)
    store.transition(job_id, JobState.QUEUED, JobState.SCHEDULED, Event(T0, "plan", "now"))
    assert store.get(job_id).job.env == ENV
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("greenai.db*"))  # with -wal, -shm
    engine.dispose()
    raw += b"".join(p.read_bytes() for p in tmp_path.glob("greenai.db*"))  # checkpointed
    assert b"fernet:v1" in raw  # the row is there, sealed
    assert SECRET.encode() not in raw and NAME.encode() not in raw


def test_two_stores_sharing_a_key_file_read_each_others_jobs(
    engine: Engine, tmp_path: Path
) -> None:
    key_file = tmp_path / "shared" / "env.key"
    one = Store(engine, env_cipher=EnvCipher.from_key_file(key_file))
    two = Store(engine, env_cipher=EnvCipher.from_key_file(key_file))
    from_one, from_two = submit(one), submit(two, {"B": "2"})
    assert two.get(from_one).job.env == ENV and one.get(from_two).job.env == {"B": "2"}


def test_an_env_no_key_opens_is_withheld_with_the_reason_and_nothing_fails(
    engine: Engine,
) -> None:
    job_id = submit(Store(engine, env_cipher=cipher()))
    other = Store(engine, env_cipher=cipher())
    record = other.get(job_id)
    reason = "job env cannot be decrypted with a test key"
    assert (record.job.env, record.env_withheld) == (None, reason)
    [listed], _ = other.list_jobs()
    assert listed.env_withheld == reason
    assert [r.id for r in other.jobs_in([JobState.QUEUED])] == [job_id]
    moved = other.transition(job_id, JobState.QUEUED, JobState.CANCELLED, Event(T0, "c", "x"))
    assert moved.env_withheld == reason


@pytest.mark.parametrize(
    ("cell", "env", "withheld"),
    [
        ({"A": "1"}, {"A": "1"}, None),  # a row from before encryption
        ({"enc": "fernet:v9", "token": "x"}, None, "job env is sealed in an unknown form"),
        ({"enc": "fernet:v1", "token": "not-a-token"}, None, "cannot be decrypted"),
        (["A"], None, "job env is stored in an unknown form (list)"),
    ],
)
def test_clear_rows_still_read_and_odd_ones_are_withheld(
    engine: Engine, cell: object, env: dict[str, str] | None, withheld: str | None
) -> None:
    store = Store(engine, env_cipher=cipher())
    job_id = submit(store)
    with engine.begin() as connection:
        connection.execute(update(jobs).where(jobs.c.id == job_id).values(env=cell))
    record = store.get(job_id)
    assert record.job.env == env
    assert (record.env_withheld is None) if withheld is None else withheld in record.env_withheld


# -- the API ---------------------------------------------------------------------------------


def test_the_api_never_returns_env_and_shows_a_withheld_one_with_its_reason(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'greenai.db'}")
    upgrade(engine)
    ours = Store(engine, env_cipher=cipher())
    readable, unreadable = submit(ours), submit(Store(engine, env_cipher=cipher()))
    deps = ApiDeps(ours, SecretStr("t"), FrozenClock(T0))
    headers = {"Authorization": "Bearer t"}
    with (
        LiveServer(create_app(deps)) as server,
        httpx.Client(base_url=server.url, headers=headers) as client,
    ):
        answers = [client.get(f"/jobs/{i}") for i in (readable, unreadable)]
        answers.append(client.get("/jobs"))
    engine.dispose()
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    shown, withheld, listing = (answer.json() for answer in answers)
    assert shown["env_withheld"] is None and "env" not in shown
    assert withheld["env_withheld"] == "job env cannot be decrypted with a test key"
    assert withheld["state"] == "queued"
    assert {item["id"]: item["env_withheld"] for item in listing["items"]}[unreadable]
    assert not [answer for answer in answers if SECRET in answer.text or NAME in answer.text]
