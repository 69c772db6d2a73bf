"""Where the admin API keeps what every replica must share: run-time settings and the audit log.

Run-time settings (the default backend, budgets, backend endpoints) are one JSON document with a version counter,
changed by compare-and-swap; replicas poll the counter (every ``[server] admin_refresh`` seconds, 0.5 s by default)
exactly as they poll the key store's, so a change made through one replica reaches every other within that time
plus one store round trip. The audit log is an append-only list of records, each chained to the one before by an
HMAC (see :mod:`spoon_llm.server.admin.audit`).

Two kinds, like the key store: a SQLite file (``admin.db`` next to ``keys.db``; processes on one host share it)
or Redis when ``[state] backend = "redis"`` (replicas on many hosts share it).
"""

from __future__ import annotations

import json
import os
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..keys import KeyStoreUnavailableError, SQLiteJobs, key_store_path

if TYPE_CHECKING:
    from ...config.models import SpoonConfig

__all__ = ["AdminStore", "RedisAdminStore", "SQLiteAdminStore", "admin_store_path", "open_admin_store"]

_T = TypeVar("_T")

#: Builds the next audit record (with its chain fields) from the previous one (``None`` for the first).
Chainer = Callable[[Mapping[str, Any] | None], dict[str, Any]]


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


class AdminStore(ABC):
    """Shared run-time settings (one versioned document) and the append-only audit log."""

    name = "admin"

    @abstractmethod
    async def version(self) -> int:
        """A counter that changes whenever the settings document does (one cheap read)."""

    @abstractmethod
    async def settings(self) -> tuple[int, dict[str, Any]]:
        """The settings document and the version it belongs to."""

    @abstractmethod
    async def change(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """Apply ``change`` to the document atomically (retried when another replica changed it meanwhile)."""

    @abstractmethod
    async def append_audit(self, chain: Chainer) -> dict[str, Any]:
        """Append the record ``chain(last record)`` builds, atomically after the current last one."""

    @abstractmethod
    async def audit_records(self) -> list[dict[str, Any]]:
        """Every audit record, oldest first."""

    async def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections and threads."""

    def describe(self) -> str:
        """Where the store is, without credentials."""
        return self.name


_SCHEMA = """
CREATE TABLE IF NOT EXISTS admin_settings (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL,
                                           data TEXT NOT NULL);
INSERT OR IGNORE INTO admin_settings (id, version, data) VALUES (1, 0, '{}');
CREATE TABLE IF NOT EXISTS audit_log (seq INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class SQLiteAdminStore(SQLiteJobs, AdminStore):
    """The document and the log in a SQLite file (WAL; one ``BEGIN IMMEDIATE`` transaction per change).

    Triggers refuse updates and deletes of audit rows through SQLite; the HMAC chain catches edits made any
    other way.
    """

    name = "sqlite"

    schema = _SCHEMA
    label = "admin store"

    async def version(self) -> int:
        """One indexed read."""
        row = await self._run(lambda c: c.execute("SELECT version FROM admin_settings WHERE id = 1").fetchone())
        return int(row[0])

    async def settings(self) -> tuple[int, dict[str, Any]]:
        """The document and its version."""
        row = await self._run(lambda c: c.execute(
            "SELECT version, data FROM admin_settings WHERE id = 1").fetchone())
        return int(row[0]), json.loads(row[1])

    async def change(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """Read, change and write the document in one transaction."""
        def work(conn: sqlite3.Connection) -> tuple[int, dict[str, Any]]:
            version, data = conn.execute("SELECT version, data FROM admin_settings WHERE id = 1").fetchone()
            new = change(json.loads(data))
            conn.execute("UPDATE admin_settings SET version = ?, data = ? WHERE id = 1", (version + 1, _dumps(new)))
            return int(version) + 1, new

        return await self._run(work, write=True)

    async def append_audit(self, chain: Chainer) -> dict[str, Any]:
        """Read the last record and insert the next in one transaction."""
        def work(conn: sqlite3.Connection) -> dict[str, Any]:
            row = conn.execute("SELECT data FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            record = chain(json.loads(row[0]) if row else None)
            conn.execute("INSERT INTO audit_log (seq, data) VALUES (?, ?)", (record["seq"], _dumps(record)))
            return record

        return await self._run(work, write=True)

    async def audit_records(self) -> list[dict[str, Any]]:
        """Every record, in order."""
        rows = await self._run(lambda c: c.execute("SELECT data FROM audit_log ORDER BY seq").fetchall())
        return [json.loads(row[0]) for row in rows]


class RedisAdminStore(AdminStore):
    """The document (a string and a version counter) and the log (a list) in Redis, shared by every replica.

    Changes are optimistic transactions (WATCH/MULTI): a change made meanwhile by another replica makes this one
    read again and retry, so no change is lost and the audit chain never forks.
    """

    name = "redis"

    def __init__(self, url: str, *, prefix: str = "spoon_llm", timeout: float = 1.0, max_connections: int = 16
                 ) -> None:
        try:
            import redis.asyncio as aioredis
            import redis.exceptions as redis_errors
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError('the Redis admin store needs redis-py: pip install "spoon-llm[redis]"') from exc
        self.url = url
        base = f"{prefix}:{{admin}}"  # one hash tag: every key of the store on one cluster slot
        self._settings, self._version, self._audit = base + ":settings", base + ":version", base + ":audit"
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=5.0, socket_timeout=timeout,
            socket_connect_timeout=timeout, health_check_interval=0)
        self._client = aioredis.Redis.from_pool(pool)
        self._errors: tuple[type[BaseException], ...] = (
            redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
        self._watch_error: type[BaseException] = redis_errors.WatchError

    async def _call(self, op: Callable[[], Any]) -> Any:
        try:
            return await op()
        except self._errors as exc:
            raise KeyStoreUnavailableError(f"admin store {self.describe()} is unreachable: {exc}") from exc

    async def version(self) -> int:
        """One GET."""
        value = await self._call(lambda: self._client.get(self._version))
        return int(value) if value is not None else 0

    async def settings(self) -> tuple[int, dict[str, Any]]:
        """Both keys in one MGET."""
        version, data = await self._call(lambda: self._client.mget([self._version, self._settings]))
        return (int(version) if version is not None else 0), (json.loads(data) if data is not None else {})

    async def _optimistic(self, watched: str, work: Callable[[Any], Any]) -> Any:
        async def attempt() -> Any:
            async with self._client.pipeline(transaction=True) as pipe:
                for _ in range(100):
                    try:
                        await pipe.watch(watched)
                        result = await work(pipe)
                        await pipe.execute()
                        return result
                    except self._watch_error:
                        continue
                raise KeyStoreUnavailableError(f"admin store {self.describe()}: {watched} kept changing; try again")

        return await self._call(attempt)

    async def change(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """WATCH the version, read, MULTI write and bump."""
        async def work(pipe: Any) -> tuple[int, dict[str, Any]]:
            version, data = await pipe.mget([self._version, self._settings])
            new = change(json.loads(data) if data is not None else {})
            pipe.multi()
            pipe.set(self._settings, _dumps(new))
            pipe.incr(self._version)
            return (int(version) if version is not None else 0) + 1, new

        result: tuple[int, dict[str, Any]] = await self._optimistic(self._version, work)
        return result

    async def append_audit(self, chain: Chainer) -> dict[str, Any]:
        """WATCH the list, read its last record, MULTI push the next."""
        async def work(pipe: Any) -> dict[str, Any]:
            last = await pipe.lindex(self._audit, -1)
            record = chain(json.loads(last) if last is not None else None)
            pipe.multi()
            pipe.rpush(self._audit, _dumps(record))
            return record

        result: dict[str, Any] = await self._optimistic(self._audit, work)
        return result

    async def audit_records(self) -> list[dict[str, Any]]:
        """The whole list."""
        rows = await self._call(lambda: self._client.lrange(self._audit, 0, -1))
        return [json.loads(row) for row in rows]

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def describe(self) -> str:
        """The URL without a password."""
        scheme, sep, rest = self.url.partition("://")
        return f"redis:{scheme}{sep}{rest.rpartition('@')[2]}"


def admin_store_path(config: SpoonConfig | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Where the SQLite admin store lives: ``admin.db`` next to the key store."""
    return key_store_path(config, env).with_name("admin.db")


def open_admin_store(config: SpoonConfig | None = None, env: Mapping[str, str] | None = None) -> AdminStore:
    """The admin store the configuration names: Redis when ``[state] backend`` is Redis, else the SQLite file."""
    from ...state import DEFAULT_REDIS_URL, REDIS_URL_ENV

    env = os.environ if env is None else env
    state = config.state if config is not None else None
    if state is not None and state.backend == "redis":
        url = env.get(REDIS_URL_ENV) or state.url or DEFAULT_REDIS_URL
        return RedisAdminStore(url, prefix=state.key_prefix, timeout=state.timeout)
    return SQLiteAdminStore(admin_store_path(config, env))
