"""Job environments encrypted at rest: ``jobs.env`` holds one Fernet token per job.

A job's ``env`` is where its credentials go (a model hub token, a database password), and the
database outlives the job: it is backed up, copied, dumped and, on PostgreSQL, read by whoever
administers it. Not storing the env is no option: a queued job must survive a crash of the
daemon with it, and any replica must be able to start it. So the whole map (names and values)
is sealed as one token (Fernet: AES-128-CBC with HMAC-SHA256, authenticated) and stored in the
same JSON column as ``{"enc": "fernet:v1", "token": "..."}``; NULL is no env. A plain JSON
object is a row written before encryption and reads as it is; writes always seal.

The keys are a file (``GREENAI_ENV_KEY_FILE``, default ``$GREENAI_HOME/env.key``), one
url-safe base64 Fernet key a line; ``#`` lines are comments. The first key seals, every key
opens (``MultiFernet``), so a key is rotated by putting a new one first; rows sealed with a key
that has been removed read as withheld. Daemons sharing a database must share the file. A
missing file is created, 0600, with one fresh key: written in full to a temporary file and
linked into place, so two daemons starting at once end up with one key, never two nor half.

A row that no key opens does not fail the read: its record has no env and says why
(``withheld``), and the engine fails the job at launch with that reason.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenai.core.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

log = logging.getLogger(__name__)

SCHEME = "fernet:v1"  # the stored form's ``enc``: a Fernet token of the env map's JSON
KEY_FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class OpenedEnv:
    """A stored env as the job's map, or ``None`` with the reason it is withheld."""

    env: dict[str, str] | None
    withheld: str | None = None


class EnvCipher:
    """Seals job env maps for the ``jobs`` table and opens them again; ``source`` says which
    keys these are (``"the keys in PATH"``): the reason a row cannot be opened names it.

    ``cryptography`` is loaded by the first env sealed or opened: each of the daemon's two
    processes builds a cipher at start, and a queue of jobs without envs need not hold its
    6.6 MB import in both."""

    def __init__(self, keys: list[bytes], source: str) -> None:
        if not keys:
            raise ConfigError(f"{source}: no key")
        self._keys = keys
        self.source = source

    @functools.cached_property
    def _fernet(self) -> MultiFernet:
        from cryptography.fernet import Fernet, MultiFernet

        return MultiFernet([Fernet(key) for key in self._keys])

    @classmethod
    def from_key_file(cls, path: Path) -> EnvCipher:
        """The keys in ``path``, created with one fresh key if it is missing."""
        if not path.exists():
            _create_key_file(path)
        try:
            text = path.read_text(encoding="ascii")
            mode = path.stat().st_mode
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the job env keys: {exc}") from exc
        if stat.S_IMODE(mode) & 0o077:
            log.warning("%s: the job env keys are readable by others (chmod 600 it)", path)
        return cls(_parse_keys(path, text), f"the keys in {path}")

    def seal(self, env: Mapping[str, str] | None) -> dict[str, str] | None:
        """What ``jobs.env`` stores for ``env``."""
        if env is None:
            return None
        text = json.dumps(dict(env), ensure_ascii=False, separators=(",", ":"))
        return {"enc": SCHEME, "token": self._fernet.encrypt(text.encode()).decode("ascii")}

    def open(self, stored: Any) -> OpenedEnv:
        """The env a ``jobs.env`` value holds: sealed, clear (a row from before encryption)
        or NULL. Never raises: what cannot be opened is withheld, with the reason."""
        if stored is None:
            return OpenedEnv(None)
        if not isinstance(stored, dict):
            return OpenedEnv(
                None, f"job env is stored in an unknown form ({type(stored).__name__})"
            )
        if set(stored) != {"enc", "token"}:  # written before encryption
            return OpenedEnv({str(k): str(v) for k, v in stored.items()})
        if stored.get("enc") != SCHEME or not isinstance(stored.get("token"), str):
            return OpenedEnv(None, f"job env is sealed in an unknown form ({stored.get('enc')!r})")
        from cryptography.fernet import InvalidToken

        try:
            clear = self._fernet.decrypt(stored["token"].encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return OpenedEnv(None, f"job env cannot be decrypted with {self.source}")
        try:
            env = json.loads(clear)
        except ValueError:
            env = None
        if not isinstance(env, dict):
            return OpenedEnv(None, "job env decrypts to something other than a map")
        return OpenedEnv({str(k): str(v) for k, v in env.items()})


@functools.cache
def process_cipher() -> EnvCipher:
    """A key of this process only, written nowhere: the default of a store opened without a
    key file (tests, benchmarks). What it seals, no other process can open."""
    return EnvCipher([new_key()], "this process's temporary key (no key file given)")


def new_key() -> bytes:
    """A fresh Fernet key, as ``Fernet.generate_key`` makes it."""
    return base64.urlsafe_b64encode(os.urandom(32))


def _is_key(text: str) -> bool:
    """Whether ``text`` is a Fernet key, by ``Fernet``'s own test: 32 url-safe base64 bytes."""
    try:
        return len(base64.urlsafe_b64decode(text.encode("ascii"))) == 32
    except (binascii.Error, ValueError):
        return False


def _parse_keys(path: Path, text: str) -> list[bytes]:
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not _is_key(line):  # the key itself never goes into the message
            raise ConfigError(f"{path}:{number}: not a Fernet key (32 url-safe base64 bytes)")
        keys.append(line.encode("ascii"))
    if not keys:
        raise ConfigError(f"{path}: holds no key")
    return keys


def _create_key_file(path: Path) -> None:
    """A new key file with one fresh key, 0600, in a folder created 0700. ``os.link`` publishes
    the complete file or fails because another process published its own first (then that
    one is read): never two keys, never an empty file read half-way."""
    try:
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)  # an existing one keeps its mode
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the job env key file: {exc}") from exc
    try:
        os.fchmod(fd, KEY_FILE_MODE)
        with os.fdopen(fd, "wb") as file:
            file.write(new_key() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
        log.info("created the job env key file %s", path)
    except FileExistsError:
        log.info("%s: another process created the job env key file first", path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the job env key file: {exc}") from exc
    finally:
        Path(temporary).unlink(missing_ok=True)
