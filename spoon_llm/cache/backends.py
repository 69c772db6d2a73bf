"""Where cached answers live: process memory (LRU), a SQLite file (survives restarts) or Redis (shared).

Every backend stores opaque bytes under a string key with an optional time to live and counts what it did
(``stats()``). Backends raise what their storage raises; the cache middleware turns any failure into a miss, so a
sick cache never fails a request. A backend that never waits (memory) may also offer plain ``get_now(key)`` and
``set_now(key, value, ttl)``: the middleware then calls those, with no coroutine per request. A backend that sets
``local = True`` (its entries never leave the process) is given the canonical request (bytes) as the key rather
than its digest, and entries in a layout only the middleware reads; it holds both as given, so the middleware hands
it exact-size copies. One with ``contains(key)`` is asked that before ``get_now`` (a miss then costs no more).
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

__all__ = ["CacheBackend", "MemoryCache", "RedisCache", "SQLiteCache", "default_cache_path"]

#: Seconds of the cache's clock between two passes that drop expired entries to make room.
PURGE_INTERVAL = 1.0


class CacheBackend(Protocol):
    """What the cache middleware needs from a store."""

    name: str

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or ``None`` when absent or expired."""

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: until evicted)."""

    async def delete(self, key: str) -> None:
        """Forget ``key``."""

    async def clear(self) -> None:
        """Forget every entry of this backend's namespace."""

    async def aclose(self) -> None:
        """Release connections and files."""

    def stats(self) -> dict[str, Any]:
        """Entries, bytes and evictions, as far as the backend knows them cheaply."""


def _tight(data: bytes) -> bytes:
    """A copy of ``data`` in a block of its own size."""
    return bytes(memoryview(data))


class MemoryCache:
    """An LRU dict bounded by entries and bytes, with per-entry expiry. For one process; lost on exit.

    Keys may be strings or bytes. Its entries never leave this process (``local``), so the cache middleware gives
    it the request itself as the key (:func:`~spoon_llm.cache._key.canonical_bytes`): a dict compares keys whole,
    so no digest of the request is needed and none can collide. A bytes key is as large as the request, so it
    counts toward ``max_bytes``.
    """

    name = "memory"
    #: Entries never leave this process: the middleware keys them by the request itself, not a digest, and may
    #: write them in a layout only it reads.
    local = True

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 256 * 1024 * 1024,
                 clock: Any = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        #: key -> (value, when it expires on the clock or None, what it counts toward max_bytes)
        self._entries: OrderedDict[str | bytes, tuple[bytes, float | None, int]] = OrderedDict()
        #: Whether an entry (live or expired) is held under a key: a C call, for the middleware's lookups that miss.
        self.contains: Callable[[object], bool] = self._entries.__contains__
        self._bytes = 0
        #: No entry expires before this moment (until then a pass finds nothing). Expired entries are dropped
        #: before live ones are evicted, by one pass over the entries at most every PURGE_INTERVAL (a heap of
        #: expiry times cost more per store than the rest of the store together).
        self._earliest = math.inf
        self._next_pass = 0.0
        self.evictions = 0
        self.expirations = 0

    def get_now(self, key: str | bytes) -> bytes | None:
        """:meth:`get` without a coroutine."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires, _ = entry
        if expires is not None and self._clock() >= expires:
            self._drop(key)
            self.expirations += 1
            return None
        self._entries.move_to_end(key)
        return value

    async def get(self, key: str | bytes) -> bytes | None:
        """The live value under ``key`` (refreshing its recency)."""
        return self.get_now(key)

    def set_now(self, key: str | bytes, value: bytes, ttl: float | None) -> None:
        """:meth:`set` without a coroutine, holding ``key`` and ``value`` as given (see :meth:`set`)."""
        size = len(value) + len(key) if key.__class__ is bytes else len(value)
        entries = self._entries
        if key in entries:  # replaced (also by a value too large to keep: the old one is stale all the same)
            self._drop(key)
        if size > self.max_bytes:
            return  # larger than the whole cache: storing it would only evict everything else
        if ttl is None:
            expires = None
        else:
            expires = self._clock() + ttl
            if expires < self._earliest:
                self._earliest = expires
        entries[key] = (value, expires, size)
        self._bytes += size
        if len(entries) > self.max_entries or self._bytes > self.max_bytes:
            self._evict()

    def _purge_expired(self, force: bool = False) -> None:
        """Drop every entry whose time to live has passed (not again within PURGE_INTERVAL, unless ``force``)."""
        now = self._clock()
        if now < self._earliest or (not force and now < self._next_pass):
            return
        entries = self._entries
        expired = [key for key, entry in entries.items() if entry[1] is not None and entry[1] <= now]
        for key in expired:
            self._drop(key)
        self.expirations += len(expired)
        self._earliest = min((entry[1] for entry in entries.values() if entry[1] is not None), default=math.inf)
        self._next_pass = now + PURGE_INTERVAL

    def _evict(self) -> None:
        """Drop expired entries, then the least recently used ones, until both bounds hold."""
        self._purge_expired()
        entries = self._entries
        while len(entries) > self.max_entries or self._bytes > self.max_bytes:
            self._bytes -= entries.popitem(last=False)[1][2]
            self.evictions += 1

    async def set(self, key: str | bytes, value: bytes, ttl: float | None) -> None:
        """Store, evicting the least recently used entries beyond the bounds.

        Held as exact copies: bytes from orjson keep the whole buffer they were written into (4 KiB for a short
        answer), which would make the cache many times larger than ``max_bytes`` counts.
        """
        self.set_now(_tight(key) if key.__class__ is bytes else key, _tight(value), ttl)

    def _drop(self, key: str | bytes) -> None:
        self._bytes -= self._entries.pop(key)[2]

    async def delete(self, key: str | bytes) -> None:
        """Forget ``key``."""
        if key in self._entries:
            self._drop(key)

    async def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
        self._earliest = math.inf
        self._bytes = 0

    async def aclose(self) -> None:
        """Nothing to release."""

    def stats(self) -> dict[str, Any]:
        """Entries, bytes, evictions and expirations (expired entries are dropped first)."""
        self._purge_expired(force=True)
        return {"backend": self.name, "entries": len(self._entries), "bytes": self._bytes,
                "evictions": self.evictions, "expirations": self.expirations}


def default_cache_path(env: dict[str, str] | None = None) -> Path:
    """``$SPOON_LLM_CACHE_PATH``, else ``$XDG_CACHE_HOME/spoon_llm/responses.db`` (``~/.cache/spoon_llm/...``)."""
    env = dict(os.environ) if env is None else env
    explicit = env.get("SPOON_LLM_CACHE_PATH")
    if explicit:
        return Path(explicit)
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spoon_llm" / "responses.db"


class SQLiteCache:
    """Entries in a SQLite file (WAL), shared by the processes of one host and kept across restarts.

    Work runs on a worker thread so the event loop never waits on the disk. ``max_entries`` is enforced every
    ``prune_every`` writes (expired entries first, then the oldest).
    """

    name = "sqlite"

    def __init__(self, path: str | os.PathLike[str] | None = None, *, max_entries: int = 100_000,
                 prune_every: int = 256) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.max_entries = max_entries
        self.prune_every = prune_every
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._writes = 0
        self.evictions = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value BLOB NOT NULL, "
                         "expires REAL, stored REAL NOT NULL)")
            self._conn = conn
        return self._conn

    def _get(self, key: str) -> bytes | None:
        with self._lock:
            conn = self._connection()
            row = conn.execute("SELECT value, expires FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            if row[1] is not None and time.time() >= row[1]:
                conn.execute("DELETE FROM responses WHERE key = ?", (key,))
                return None
            return bytes(row[0])

    def _set(self, key: str, value: bytes, ttl: float | None) -> None:
        now = time.time()
        with self._lock:
            conn = self._connection()
            conn.execute("INSERT OR REPLACE INTO responses (key, value, expires, stored) VALUES (?, ?, ?, ?)",
                         (key, value, None if ttl is None else now + ttl, now))
            self._writes += 1
            if self._writes % self.prune_every == 0:
                self._prune(conn, now)

    def _prune(self, conn: sqlite3.Connection, now: float) -> None:
        conn.execute("DELETE FROM responses WHERE expires IS NOT NULL AND expires <= ?", (now,))
        (count,) = conn.execute("SELECT COUNT(*) FROM responses").fetchone()
        excess = count - self.max_entries
        if excess > 0:
            conn.execute("DELETE FROM responses WHERE key IN (SELECT key FROM responses ORDER BY stored LIMIT ?)",
                         (excess,))
            self.evictions += excess

    async def get(self, key: str) -> bytes | None:
        """The live value under ``key``."""
        return await asyncio.to_thread(self._get, key)

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store (replacing an older entry)."""
        await asyncio.to_thread(self._set, key, value, ttl)

    def _delete(self, key: str | None) -> None:
        with self._lock:
            conn = self._connection()
            if key is None:
                conn.execute("DELETE FROM responses")
            else:
                conn.execute("DELETE FROM responses WHERE key = ?", (key,))

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        await asyncio.to_thread(self._delete, key)

    async def clear(self) -> None:
        """Forget every entry of the file."""
        await asyncio.to_thread(self._delete, None)

    async def aclose(self) -> None:
        """Close the file."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def stats(self) -> dict[str, Any]:
        """The file, its entry count and the evictions made by this process."""
        entries: int | None = None
        try:
            with self._lock:
                (entries,) = self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()
        except sqlite3.Error:
            pass
        return {"backend": self.name, "path": str(self.path), "entries": entries, "evictions": self.evictions}


class RedisCache:
    """Entries in Redis under ``<prefix>:cache:<key>``, with Redis' own expiry; shared by every process and host."""

    name = "redis"

    def __init__(self, url: str, *, prefix: str = "spoon_llm", timeout: float = 1.0, client: Any = None) -> None:
        self.url = url
        self.prefix = f"{prefix}:cache:"
        self.timeout = timeout
        self._client = client

    def _redis(self) -> Any:
        if self._client is None:
            try:
                import redis.asyncio as aioredis
            except ImportError as exc:  # pragma: no cover - exercised only without the extra
                from ..errors import ConfigurationError

                raise ConfigurationError('the Redis cache needs redis-py: pip install "spoon-llm[redis]"',
                                         key="cache.backend") from exc
            self._client = aioredis.Redis.from_url(self.url, socket_timeout=self.timeout,
                                                   socket_connect_timeout=self.timeout)
        return self._client

    async def get(self, key: str) -> bytes | None:
        """The value under ``key`` (Redis expires entries itself)."""
        value = await self._redis().get(self.prefix + key)
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store with a millisecond expiry (none when ``ttl`` is ``None``)."""
        await self._redis().set(self.prefix + key, value, px=None if ttl is None else max(1, int(ttl * 1000)))

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        await self._redis().delete(self.prefix + key)

    async def clear(self) -> None:
        """Forget every entry under this cache's prefix (SCAN, never KEYS)."""
        client = self._redis()
        async for name in client.scan_iter(match=self.prefix + "*", count=500):
            await client.delete(name)

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def stats(self) -> dict[str, Any]:
        """The backend's name (counting entries would need a round trip)."""
        return {"backend": self.name}
