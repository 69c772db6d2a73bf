"""Virtual keys of the gateway: the record, how a key is made and hashed, and where records are kept.

A virtual key is ``sk-spoon-`` plus 43 random URL-safe characters (256 bits from :mod:`secrets`). Only its
HMAC-SHA-256 under the server secret is stored, so the store (a SQLite file next to the state database, or Redis
when ``[state] backend = "redis"``) never holds a usable key; the plain key is shown once, when it is created.

Every change to the store bumps a version counter. Readers cache records and check that counter at most every
``refresh`` seconds (see :class:`~spoon_llm.server.auth.Authenticator`), which bounds how long a replica can go on
honouring a key revoked through another one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ..errors import ConfigurationError, LLMError, ValidationError

if TYPE_CHECKING:
    from ..config.models import SpoonConfig

__all__ = [
    "KEY_PREFIX",
    "KeyConflictError",
    "KeyNotFoundError",
    "KeyStore",
    "KeyStoreError",
    "KeyStoreUnavailableError",
    "RESERVED_ALIAS",
    "RedisKeyStore",
    "SQLiteKeyStore",
    "VirtualKey",
    "generate_key",
    "hash_key",
    "key_store_path",
    "matches",
    "new_key",
    "open_key_store",
    "server_secret",
    "tags_of",
]

_T = TypeVar("_T")

#: Every virtual key starts with this, so it is recognisable in a leaked file and cheap to tell from a master key.
KEY_PREFIX = "sk-spoon-"
Role = Literal["user", "admin"]
Period = Literal["total", "daily", "monthly"]

_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
#: The master key's name in usage and the audit log; no virtual key may pass for it.
RESERVED_ALIAS = "master"
_UPDATABLE = frozenset({"role", "models", "budget_limit", "budget_period", "rpm", "tpm", "max_concurrent",
                        "expires_at", "metadata"})


class KeyStoreError(LLMError):
    """A key-store operation failed; the message names the key alias and what to do."""


class KeyNotFoundError(KeyStoreError):
    """No key has that alias."""


class KeyConflictError(KeyStoreError):
    """A key with that alias already exists."""


class KeyStoreUnavailableError(KeyStoreError):
    """The key store could not be reached (Redis down, SQLite locked past its timeout)."""


def generate_key() -> str:
    """A fresh plain virtual key: ``sk-spoon-`` + 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(plain: str, secret: bytes) -> str:
    """The stored form of a key: hex HMAC-SHA-256 under the server secret."""
    return hmac.new(secret, plain.encode("utf-8"), hashlib.sha256).hexdigest()


def server_secret(secret: str | None, master_key: str | None) -> bytes:
    """The HMAC secret: ``[server] secret`` when set, else one derived from the master key.

    Deriving from the master key means rotating the master key invalidates every virtual key; set a secret of
    its own to rotate them independently.
    """
    if secret:
        return secret.encode("utf-8")
    if master_key:
        return hmac.new(master_key.encode("utf-8"), b"spoon-llm virtual key hashing v1", hashlib.sha256).digest()
    raise ConfigurationError("virtual keys need a server secret: set [server] secret (or SPOON_LLM_SERVER_SECRET), "
                             "or a master key ([server] master_key / SPOON_LLM_MASTER_KEY) to derive one from",
                             key="server.secret")


def _storable(text: str) -> bool:
    # JSON can carry a lone surrogate ("\ud800"): such a record could be neither encoded nor audited.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_limit(name: str, value: Any, *, number: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float) if number else int):
        kind = "a number" if number else "a whole number"
        raise ValidationError(f"virtual key field {name!r} must be {kind}, got {value!r}")
    if value < 0 or (not number and value == 0) or (number and not math.isfinite(value)):
        raise ValidationError(f"virtual key field {name!r} must be {'>= 0' if number else '> 0'}, got {value!r}")


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """One virtual key as stored: limits, allowed models and metadata, never the key itself.

    ``models``: aliases or model names the key may call (``*`` wildcards allowed), ``None`` for every one.
    ``budget_limit`` (USD) per ``budget_period``; ``rpm``/``tpm`` per minute; ``max_concurrent`` requests at once;
    ``expires_at`` and ``created_at``/``revoked_at`` are Unix times. ``metadata`` (e.g. ``user``, ``team``) become
    the request's economics tags, so per-user and per-team budgets of the library apply.
    """

    id: str
    alias: str
    key_hash: str = field(repr=False)
    key_prefix: str
    role: Role = "user"
    models: tuple[str, ...] | None = None
    budget_limit: float | None = None
    budget_period: Period = "total"
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    expires_at: float | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    revoked_at: float | None = None

    def __post_init__(self) -> None:
        if not _ALIAS.match(self.alias):
            raise ValidationError(f"virtual key alias {self.alias!r} is invalid: use 1-64 letters, digits, '.', "
                                  "'_', '@' or '-', starting with a letter or digit")
        if self.role not in ("user", "admin"):
            raise ValidationError(f"virtual key {self.alias!r}: role must be 'user' or 'admin', got {self.role!r}")
        if self.budget_period not in ("total", "daily", "monthly"):
            raise ValidationError(f"virtual key {self.alias!r}: budget_period must be total, daily or monthly, "
                                  f"got {self.budget_period!r}")
        _check_limit("budget_limit", self.budget_limit, number=True)
        for name in ("rpm", "tpm", "max_concurrent"):
            _check_limit(name, getattr(self, name))
        _check_limit("expires_at", self.expires_at, number=True)
        if self.models is not None and (not all(isinstance(m, str) and m for m in self.models)):
            raise ValidationError(f"virtual key {self.alias!r}: models must be non-empty names")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.metadata.items()):
            raise ValidationError(f"virtual key {self.alias!r}: metadata keys and values must be strings")
        if not all(_storable(t) for t in (*(self.models or ()), *self.metadata, *self.metadata.values())):
            raise ValidationError(f"virtual key {self.alias!r}: models and metadata must be valid Unicode text "
                                  "(a lone surrogate such as \\ud800 is not)")

    @property
    def display(self) -> str:
        """How the key is shown in lists: its first characters and an ellipsis."""
        return self.key_prefix + "…"

    def status(self, now: float | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the stored form; holds the hash, not the key)."""
        data = dataclasses.asdict(self)
        data["models"] = list(self.models) if self.models is not None else None
        data["metadata"] = dict(self.metadata)
        return data

    def public_dict(self, now: float | None = None) -> dict[str, Any]:
        """What ``keys list``/``show`` and the admin API print: no hash, the display prefix and the status."""
        data = self.to_dict()
        del data["key_hash"]
        data["key_prefix"] = self.display
        data["status"] = self.status(now)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VirtualKey:
        """The record back from its stored form."""
        values = dict(data)
        if values.get("models") is not None:
            values["models"] = tuple(values["models"])
        return cls(**values)

    def replace(self, **changes: Any) -> VirtualKey:
        """A copy with ``changes`` applied (validated); only limits, models, role, expiry and metadata change."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValidationError(f"virtual key {self.alias!r}: cannot change {', '.join(sorted(unknown))}; "
                                  f"changeable fields: {', '.join(sorted(_UPDATABLE))}")
        if "models" in changes and changes["models"] is not None:
            changes["models"] = tuple(changes["models"])
        return dataclasses.replace(self, **changes)


def new_key(alias: str, secret: bytes, **fields: Any) -> tuple[VirtualKey, str]:
    """A new record and its plain key (show the plain key once; only the record is stored)."""
    if alias.lower() == RESERVED_ALIAS:
        raise ValidationError(f"the alias {alias!r} is reserved: usage and the audit log name the master key "
                              f"{RESERVED_ALIAS!r}; pick another alias")
    plain = generate_key()
    if fields.get("models") is not None:
        fields["models"] = tuple(fields["models"])
    record = VirtualKey(id=secrets.token_hex(8), alias=alias, key_hash=hash_key(plain, secret),
                        key_prefix=plain[:len(KEY_PREFIX) + 4], created_at=time.time(), **fields)
    return record, plain


def _encode(record: VirtualKey) -> str:
    return json.dumps(record.to_dict(), separators=(",", ":"), sort_keys=True)


def _decode(data: str | bytes) -> VirtualKey:
    try:
        return VirtualKey.from_dict(json.loads(data))
    except (ValueError, TypeError) as exc:  # a damaged record, or one written by a newer version
        raise KeyStoreError(f"a stored virtual key record cannot be read ({type(exc).__name__}: {exc}); "
                            "was the store written by a newer spoon-llm?") from None


class KeyStore(ABC):
    """Where virtual-key records live; every change bumps :meth:`version`."""

    name = "keys"

    @abstractmethod
    async def create(self, record: VirtualKey) -> None:
        """Store a new record; :class:`KeyConflictError` when the alias is taken."""

    @abstractmethod
    async def get_by_hash(self, key_hash: str) -> VirtualKey | None:
        """The record whose key hashes to ``key_hash`` (revoked and expired ones included)."""

    @abstractmethod
    async def get_by_alias(self, alias: str) -> VirtualKey | None:
        """The record named ``alias``."""

    @abstractmethod
    async def list_keys(self) -> list[VirtualKey]:
        """Every record, oldest first."""

    @abstractmethod
    async def _swap(self, alias: str, change: Callable[[VirtualKey], VirtualKey]) -> VirtualKey:
        """Apply ``change`` to the record atomically and bump the version (unless it returns the record itself)."""

    @abstractmethod
    async def version(self) -> int:
        """A counter that changes whenever any record does (one cheap read)."""

    async def update(self, alias: str, **changes: Any) -> VirtualKey:
        """Change a key's limits, models, role, expiry or metadata; returns the new record."""
        return await self._swap(alias, lambda record: record.replace(**changes))

    async def revoke(self, alias: str) -> VirtualKey:
        """Revoke a key for good (it stays listed, marked revoked); revoking twice keeps the first time."""
        now = time.time()
        return await self._swap(alias, lambda r: r if r.revoked_at is not None else
                                dataclasses.replace(r, revoked_at=now))

    async def require(self, alias: str) -> VirtualKey:
        """The record named ``alias``, or :class:`KeyNotFoundError`."""
        record = await self.get_by_alias(alias)
        if record is None:
            raise KeyNotFoundError(f"no virtual key named {alias!r} (spoon-llm keys list shows them)")
        return record

    async def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections and threads."""

    def describe(self) -> str:
        """Where the store is, without credentials."""
        return self.name


_SCHEMA = """
CREATE TABLE IF NOT EXISTS virtual_keys (id TEXT PRIMARY KEY, alias TEXT NOT NULL UNIQUE,
                                         key_hash TEXT NOT NULL UNIQUE, created_at REAL NOT NULL,
                                         data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS virtual_keys_version (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT OR IGNORE INTO virtual_keys_version (id, value) VALUES (1, 0);
"""
_BUMP = "UPDATE virtual_keys_version SET value = value + 1 WHERE id = 1"


class SQLiteJobs:
    """A connection opened on first use (WAL, the schema created), transactions and reads run on one thread."""

    #: The tables and indexes the file must hold (``executescript``; idempotent).
    schema: str = ""
    #: What the store is called in errors ("key store", "admin store").
    label: str = "store"

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        self._busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"spoon-llm-{self.label.split()[0]}")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                Path(self.path).touch(mode=0o600, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
            # Switching a new file to WAL and creating the schema can meet another process doing the same; SQLite
            # answers that with "locked" at once (no busy wait), so retry within the busy timeout.
            deadline = time.monotonic() + self._busy_timeout
            while True:
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                    conn.executescript(self.schema)
                    break
                except sqlite3.OperationalError:
                    if time.monotonic() > deadline:
                        conn.close()
                        raise
                    time.sleep(0.02)
            self._conn = conn
        return self._conn

    def _transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def _run(self, work: Callable[[sqlite3.Connection], _T], *, write: bool = False) -> _T:
        if self._closed:
            raise KeyStoreUnavailableError(f"the {self.label} {self.path} is closed")
        job: Callable[[], _T] = (lambda: self._transaction(work)) if write else (lambda: work(self._connect()))
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, job)
        except sqlite3.OperationalError as exc:
            raise KeyStoreUnavailableError(f"{self.label} {self.path}: {exc}") from exc

    async def close(self) -> None:
        """Close the connection on its thread, then the thread."""
        if self._closed:
            return
        self._closed = True

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)

    def describe(self) -> str:
        """The file."""
        return f"sqlite:{self.path}"


class SQLiteKeyStore(SQLiteJobs, KeyStore):
    """Records in a SQLite file (WAL; one ``BEGIN IMMEDIATE`` transaction per change, so processes can share it).

    One connection on one worker thread keeps the event loop free of disk waits.
    """

    name = "sqlite"
    schema = _SCHEMA
    label = "key store"

    async def create(self, record: VirtualKey) -> None:
        """Insert the record (alias and hash are unique)."""
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO virtual_keys (id, alias, key_hash, created_at, data) VALUES (?, ?, ?, ?, ?)",
                         (record.id, record.alias, record.key_hash, record.created_at, _encode(record)))
            conn.execute(_BUMP)

        try:
            await self._run(work, write=True)
        except sqlite3.IntegrityError:
            raise KeyConflictError(f"a virtual key named {record.alias!r} already exists (aliases stay taken after "
                                   "revocation); pick another alias") from None

    async def _one(self, column: str, value: str) -> VirtualKey | None:
        row = await self._run(lambda conn: conn.execute(
            f"SELECT data FROM virtual_keys WHERE {column} = ?", (value,)).fetchone())
        return _decode(row[0]) if row else None

    async def get_by_hash(self, key_hash: str) -> VirtualKey | None:
        """Look a record up by its key's hash."""
        return await self._one("key_hash", key_hash)

    async def get_by_alias(self, alias: str) -> VirtualKey | None:
        """Look a record up by alias."""
        return await self._one("alias", alias)

    async def list_keys(self) -> list[VirtualKey]:
        """Every record, oldest first."""
        rows = await self._run(lambda conn: conn.execute(
            "SELECT data FROM virtual_keys ORDER BY created_at, alias").fetchall())
        return [_decode(row[0]) for row in rows]

    async def _swap(self, alias: str, change: Callable[[VirtualKey], VirtualKey]) -> VirtualKey:
        def work(conn: sqlite3.Connection) -> VirtualKey | None:
            row = conn.execute("SELECT data FROM virtual_keys WHERE alias = ?", (alias,)).fetchone()
            if row is None:
                return None
            current = _decode(row[0])
            record = change(current)
            if record is current:  # nothing changed (a second revocation): no write, no version bump
                return record
            conn.execute("UPDATE virtual_keys SET data = ? WHERE alias = ?", (_encode(record), alias))
            conn.execute(_BUMP)
            return record

        record = await self._run(work, write=True)
        if record is None:
            raise KeyNotFoundError(f"no virtual key named {alias!r} (spoon-llm keys list shows them)")
        return record

    async def version(self) -> int:
        """The change counter (one indexed read)."""
        row = await self._run(lambda conn: conn.execute(
            "SELECT value FROM virtual_keys_version WHERE id = 1").fetchone())
        return int(row[0])


# KEYS: alias index, hash -> record, version; ARGV: alias, hash, record
_CREATE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('INCR', KEYS[3])
return 1
"""
# KEYS: alias index, hash -> record, version; ARGV: alias, the record read, the new record
_SWAP = """
local h = redis.call('HGET', KEYS[1], ARGV[1])
if not h then return -1 end
if redis.call('HGET', KEYS[2], h) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], h, ARGV[3])
redis.call('INCR', KEYS[3])
return 1
"""


class RedisKeyStore(KeyStore):
    """Records in Redis, shared by every replica: a hash from key hash to record, an alias index, a version.

    Changes are Lua scripts (compare-and-swap for updates), so concurrent admins never lose a change. At most
    ``max_connections`` connections are open; a lookup that finds them all busy waits up to ``pool_timeout``
    seconds for one instead of failing.
    """

    name = "redis"

    def __init__(self, url: str, *, prefix: str = "spoon_llm", timeout: float = 1.0, max_connections: int = 64,
                 pool_timeout: float = 5.0) -> None:
        try:
            import redis.asyncio as aioredis
            import redis.exceptions as redis_errors
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError('the Redis key store needs redis-py: pip install "spoon-llm[redis]"') from exc
        self.url = url
        base = f"{prefix}:{{vkeys}}"  # one hash tag: every key of the store on one cluster slot
        self._keys = [base + ":alias", base + ":byhash", base + ":version"]
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=pool_timeout, socket_timeout=timeout,
            socket_connect_timeout=timeout, health_check_interval=0)
        self._client = aioredis.Redis.from_pool(pool)  # the client owns the pool: closing it closes the pool
        self._errors: tuple[type[BaseException], ...] = (
            redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
        self._create = self._client.register_script(_CREATE)
        self._swap_script = self._client.register_script(_SWAP)

    async def _call(self, op: Callable[[], Any]) -> Any:
        try:
            return await op()
        except self._errors as exc:
            raise KeyStoreUnavailableError(f"key store {self.describe()} is unreachable: {exc}") from exc

    async def create(self, record: VirtualKey) -> None:
        """Store the record unless the alias is taken."""
        ok = await self._call(lambda: self._create(keys=self._keys,
                                                   args=[record.alias, record.key_hash, _encode(record)]))
        if not int(ok):
            raise KeyConflictError(f"a virtual key named {record.alias!r} already exists (aliases stay taken after "
                                   "revocation); pick another alias")

    async def get_by_hash(self, key_hash: str) -> VirtualKey | None:
        """One HGET."""
        data = await self._call(lambda: self._client.hget(self._keys[1], key_hash))
        return _decode(data) if data is not None else None

    async def _raw(self, alias: str) -> bytes | None:
        key_hash = await self._call(lambda: self._client.hget(self._keys[0], alias))
        if key_hash is None:
            return None
        data: bytes | None = await self._call(lambda: self._client.hget(self._keys[1], key_hash))
        return data

    async def get_by_alias(self, alias: str) -> VirtualKey | None:
        """The alias index, then the record."""
        data = await self._raw(alias)
        return _decode(data) if data is not None else None

    async def list_keys(self) -> list[VirtualKey]:
        """Every record, oldest first."""
        rows = await self._call(lambda: self._client.hvals(self._keys[1]))
        records = [_decode(row) for row in rows]
        return sorted(records, key=lambda r: (r.created_at, r.alias))

    async def _swap(self, alias: str, change: Callable[[VirtualKey], VirtualKey]) -> VirtualKey:
        for _ in range(100):
            data = await self._raw(alias)
            if data is None:
                break
            current = _decode(data)
            record = change(current)
            if record is current:  # nothing changed (a second revocation): no write, no version bump
                return record
            done = int(await self._call(lambda: self._swap_script(  # noqa: B023 - awaited within the iteration
                keys=self._keys, args=[alias, data, _encode(record)])))  # noqa: B023
            if done == 1:
                return record
            if done == -1:
                break
        else:  # pragma: no cover - a hundred concurrent changes to one key in a row
            raise KeyStoreError(f"virtual key {alias!r} kept changing under this update; try again")
        raise KeyNotFoundError(f"no virtual key named {alias!r} (spoon-llm keys list shows them)")

    async def version(self) -> int:
        """One GET."""
        value = await self._call(lambda: self._client.get(self._keys[2]))
        return int(value) if value is not None else 0

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def describe(self) -> str:
        """The URL without a password."""
        scheme, sep, rest = self.url.partition("://")
        return f"redis:{scheme}{sep}{rest.rpartition('@')[2]}"


def key_store_path(config: SpoonConfig | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Where the SQLite key store lives: ``keys.db`` next to the state database."""
    from ..state.sqlite import STATE_PATH_ENV, default_state_path

    env = os.environ if env is None else env
    state = env.get(STATE_PATH_ENV) or (config.state.path if config is not None else None)
    base = Path(state).expanduser() if state else default_state_path(env)
    return base.with_name("keys.db")


def open_key_store(config: SpoonConfig | None = None, env: Mapping[str, str] | None = None) -> KeyStore:
    """The key store the configuration names: Redis when ``[state] backend`` is Redis, else the SQLite file."""
    from ..state import DEFAULT_REDIS_URL, REDIS_URL_ENV

    env = os.environ if env is None else env
    state = config.state if config is not None else None
    if state is not None and state.backend == "redis":
        url = env.get(REDIS_URL_ENV) or state.url or DEFAULT_REDIS_URL
        return RedisKeyStore(url, prefix=state.key_prefix, timeout=state.timeout,
                             max_connections=getattr(state, "redis_max_connections", 64),
                             pool_timeout=getattr(state, "redis_pool_timeout", 5.0))
    return SQLiteKeyStore(key_store_path(config, env))


def tags_of(record: VirtualKey) -> dict[str, str]:
    """The economics tags of a key's requests: its metadata."""
    return dict(record.metadata)


def matches(patterns: Sequence[str], model: str) -> bool:
    """True when ``model`` is one of ``patterns`` (``*`` matches any run of characters)."""
    import fnmatch

    return any(model == p or ("*" in p and fnmatch.fnmatchcase(model, p)) for p in patterns)
