"""The SQLite state store: persistent spend, ledger and limits in one file, off the event loop.

One connection lives on one dedicated worker thread, so the loop never blocks on disk and the connection is never
shared between threads. The file is in WAL mode, and every operation is one ``BEGIN IMMEDIATE`` transaction, so
several processes on one host can share the file without over-admitting.

The usage ledger is written behind: :meth:`SQLiteStore.append_nowait` (what cost accounting calls for every
request) only puts the record in an in-memory buffer; a background flusher writes the buffer in batches, one
transaction each, ``flush_interval`` seconds after the first buffered record or as soon as ``flush_rows`` are
waiting. :meth:`~SQLiteStore.records`, :meth:`~SQLiteStore.append` and :meth:`~SQLiteStore.close` write the buffer
first, and so does interpreter exit for a store nobody closed, so a clean shutdown loses nothing. An unclean end
(``SIGKILL``, a crash, power loss) loses at most what was still buffered: the records of the last
``flush_interval`` seconds (at most ``flush_rows`` of them at the moment it happened, plus a batch being written).
Counters, windows and cool-downs (budget spend, rate limits) are never buffered.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from .base import NOT_HELD, StateStore, StateStoreError

_RAISE: Any = object()  # no permissive answer: the failure is raised whatever the fail mode

__all__ = ["SQLiteStore", "default_state_path"]

logger = logging.getLogger("spoon_llm.state")

_T = TypeVar("_T")

_INSERT_LEDGER = "INSERT INTO ledger (tbl, ts, data) VALUES (?, ?, ?)"
#: What json.dumps(record, separators=(",", ":"), default=str) does, without building an encoder per record.
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode

#: Stores with a write-behind buffer, flushed at interpreter exit when nobody closed them.
_open_stores: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()

STATE_PATH_ENV = "SPOON_LLM_STATE_PATH"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires REAL);
CREATE TABLE IF NOT EXISTS floats (key TEXT PRIMARY KEY, value REAL NOT NULL, expires REAL);
CREATE TABLE IF NOT EXISTS windows (key TEXT NOT NULL, entry TEXT NOT NULL, ts REAL NOT NULL,
                                    amount INTEGER NOT NULL, PRIMARY KEY (key, entry));
CREATE INDEX IF NOT EXISTS windows_by_time ON windows (key, ts);
CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, ts REAL NOT NULL,
                                   data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_by_time ON ledger (tbl, ts);
"""


def default_state_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the SQLite store lives unless configured.

    ``$SPOON_LLM_STATE_PATH``, else ``$XDG_DATA_HOME/spoon_llm/usage.db`` (``~/.local/share/spoon_llm/usage.db``).
    """
    env = os.environ if env is None else env
    named = env.get(STATE_PATH_ENV)
    if named:
        return Path(named).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "spoon_llm" / "usage.db"


class SQLiteStore(StateStore):
    """State in a SQLite file (WAL), served by one worker thread.

    ``path`` defaults to :func:`default_state_path`; ``":memory:"`` gives a private, throw-away database.
    ``busy_timeout`` is how long a transaction waits for another process's lock before the store counts as
    unavailable. Ledger records from :meth:`append_nowait` are written in batches ``flush_interval`` seconds
    after the first one is buffered, or once ``flush_rows`` are waiting (see the module docstring for what an
    unclean end can lose).
    """

    name = "sqlite"
    shared = True

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = 5.0,
                 clock: Callable[[], float] = time.time, flush_interval: float = 0.2,
                 flush_rows: int = 512) -> None:
        self.path = str(path) if path is not None else str(default_state_path())
        self.clock = clock
        self.flush_interval = flush_interval
        self.flush_rows = flush_rows
        self._busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spoon-llm-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        # The write-behind ledger buffer: appended on the request path, emptied only by the worker thread.
        self._pending: deque[tuple[str, float, Mapping[str, Any]]] = deque()
        self._flush_queued = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._pid = os.getpid()
        self.flushes = 0
        self.flushed_records = 0
        self.flush_failures = 0

    # -- the worker thread ------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        return conn

    def _transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")  # take the write lock first: read-check-write is then atomic
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def _run(self, work: Callable[[sqlite3.Connection], _T], operation: str = "transaction",
                   permissive: Any = _RAISE) -> _T:
        """``work`` in one transaction; a failure is decided by ``fail_mode`` (``permissive``: the open answer)."""
        if permissive is _RAISE:
            return await self._call(self._transaction, work)
        try:
            return await self._call(self._transaction, work)
        except StateStoreError as exc:
            # ``permissive`` is the open-mode answer of this operation's result type (not the sentinel here).
            return cast(_T, self.decide(operation, exc, permissive))

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        # Any function of the worker thread (a transaction, the ledger flush), in submission order.
        if self._closed:
            raise StateStoreError(f"the SQLite store {self.path} is closed", store=self.path)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except (sqlite3.Error, OSError) as exc:  # locked, read-only, corrupt ("file is not a database"), no disk
            raise StateStoreError(f"SQLite store {self.path}: {type(exc).__name__}: {exc}", store=self.path) from exc

    # -- counters ---------------------------------------------------------------------------------------------

    def _read(self, conn: sqlite3.Connection, key: str, now: float) -> int:
        row = conn.execute("SELECT value, expires FROM counters WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= now):
            return 0
        return int(row[0])

    def _write(self, conn: sqlite3.Connection, key: str, value: int, expires: float | None) -> None:
        conn.execute("INSERT INTO counters (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                     "value = excluded.value, expires = COALESCE(excluded.expires, counters.expires)",
                     (key, value, expires))

    async def get(self, key: str) -> int:
        """The counter's value."""
        now = self.clock()
        return await self._run(lambda conn: self._read(conn, key, now), "get", 0)

    async def get_many(self, keys: Sequence[str]) -> list[int]:
        """Several counters at once."""
        now = self.clock()
        return await self._run(lambda conn: [self._read(conn, k, now) for k in keys], "get_many", [0] * len(keys))

    async def add(self, deltas: Mapping[str, int], *, ttl: float | None = None) -> list[int]:
        """Add each delta in one transaction."""
        now = self.clock()
        expires = now + ttl if ttl is not None else None

        def work(conn: sqlite3.Connection) -> list[int]:
            out = []
            for key, delta in deltas.items():
                value = self._read(conn, key, now) + delta
                self._write(conn, key, value, expires)
                out.append(value)
            return out

        return await self._run(work, "add", [0] * len(deltas))

    async def reserve(self, key: str, amount: int, limit: int, *, also: Mapping[str, int] | None = None,
                      ttl: float | None = None) -> tuple[bool, int]:
        """Add ``amount`` only if the counter stays within ``limit``."""
        now = self.clock()
        expires = now + ttl if ttl is not None else None

        def work(conn: sqlite3.Connection) -> tuple[bool, int]:
            value = self._read(conn, key, now)
            if value + amount > limit:
                return False, value
            self._write(conn, key, value + amount, expires)
            for other, delta in (also or {}).items():
                self._write(conn, other, self._read(conn, other, now) + delta, expires)
            return True, value + amount

        return await self._run(work, "reserve", (True, NOT_HELD))

    # -- windows and buckets ----------------------------------------------------------------------------------

    async def window_acquire(self, key: str, entry: str, amount: int, limit: int,
                             window: float) -> tuple[bool, float]:
        """Sliding-window log in the ``windows`` table."""
        now = self.clock()

        def work(conn: sqlite3.Connection) -> tuple[bool, float]:
            conn.execute("DELETE FROM windows WHERE key = ? AND ts <= ?", (key, now - window))
            total = conn.execute("SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM windows WHERE key = ?",
                                 (key,)).fetchone()
            if total[0] + amount <= limit or (total[1] == 0 and amount > limit):
                conn.execute("INSERT OR REPLACE INTO windows (key, entry, ts, amount) VALUES (?, ?, ?, ?)",
                             (key, entry, now, amount))
                return True, 0.0
            need = total[0] + amount - limit
            freed = 0
            for ts, size in conn.execute("SELECT ts, amount FROM windows WHERE key = ? ORDER BY ts", (key,)):
                freed += size
                if freed >= need:
                    return False, max(ts + window - now, 0.0)
            return False, window

        return await self._run(work, "window_acquire", (True, float(NOT_HELD)))

    async def window_adjust(self, key: str, entry: str, delta: int) -> None:
        """Settle an admitted entry."""
        await self._run(lambda conn: conn.execute(
            "UPDATE windows SET amount = MAX(amount + ?, 0) WHERE key = ? AND entry = ?", (delta, key, entry)),
            "window_adjust", None)

    def _tat(self, conn: sqlite3.Connection, key: str) -> float | None:
        row = conn.execute("SELECT value FROM floats WHERE key = ?", (key,)).fetchone()
        return None if row is None else float(row[0])

    def _set_float(self, conn: sqlite3.Connection, key: str, value: float, expires: float | None) -> None:
        conn.execute("INSERT INTO floats (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                     "value = excluded.value, expires = excluded.expires", (key, value, expires))

    async def bucket_acquire(self, key: str, amount: float, rate: float, burst: float) -> tuple[bool, float]:
        """GCRA with the theoretical arrival time in the ``floats`` table."""
        now = self.clock()
        interval = 1.0 / rate

        def work(conn: sqlite3.Connection) -> tuple[bool, float]:
            tat = max(self._tat(conn, key) or now, now)
            new_tat = tat + amount * interval
            allow_at = new_tat - burst * interval
            # 1 ns of slack: summing intervals in floating point must not refuse the last unit of a burst.
            if allow_at - now > 1e-9 and tat > now:
                return False, allow_at - now
            self._set_float(conn, key, new_tat, None)
            return True, 0.0

        return await self._run(work, "bucket_acquire", (True, float(NOT_HELD)))

    async def bucket_adjust(self, key: str, delta: float, rate: float) -> None:
        """Move the theoretical arrival time (never below now)."""
        now = self.clock()

        def work(conn: sqlite3.Connection) -> None:
            tat = self._tat(conn, key)
            if tat is not None:
                self._set_float(conn, key, max(tat + delta / rate, now), None)

        await self._run(work, "bucket_adjust", None)

    # -- cool-downs -------------------------------------------------------------------------------------------

    async def cooldown_set(self, key: str, seconds: float) -> None:
        """Block ``key`` until now + ``seconds`` unless blocked for longer already."""
        until = self.clock() + seconds
        name = "cooldown:" + key

        def work(conn: sqlite3.Connection) -> None:
            current = self._tat(conn, name)
            if current is None or until > current:
                self._set_float(conn, name, until, until)

        await self._run(work, "cooldown_set", None)

    async def cooldown_remaining(self, key: str) -> float:
        """Seconds left of the cool-down."""
        now = self.clock()
        until = await self._run(lambda conn: self._tat(conn, "cooldown:" + key), "cooldown_remaining", None)
        return max(until - now, 0.0) if until is not None else 0.0

    # -- ledger -----------------------------------------------------------------------------------------------

    def append_nowait(self, table: str, record: Mapping[str, Any]) -> None:
        """Buffer one record for the ``ledger`` table; the flusher writes it within ``flush_interval`` seconds.

        No thread hop and no await: this is what cost accounting calls on every request.
        """
        if self._closed:
            raise StateStoreError(f"the SQLite store {self.path} is closed")
        ts = record.get("ts")
        pending = self._pending
        pending.append((table, self.clock() if ts is None else float(ts), record))
        waiting = len(pending)
        if waiting == 1:
            if self._flusher is None:
                self._start_flusher()
            self._wake.set()  # the first record since the last flush starts the interval
        elif waiting >= self.flush_rows and not self._flush_queued:
            self._flush_queued = True
            self._submit_flush()
        return None

    async def append(self, table: str, record: Mapping[str, Any]) -> None:
        """Append one record to the ``ledger`` table, written (with anything buffered before it) on return.

        When the file cannot be written (locked past ``busy_timeout``, read-only, full disk) the record stays
        buffered and the flusher writes it later: a usage record never fails the request it describes.
        """
        if self._closed:
            raise StateStoreError(f"the SQLite store {self.path} is closed", store=self.path)
        ts = record.get("ts")
        self._pending.append((table, self.clock() if ts is None else float(ts), record))
        try:
            await self._call(self._write_pending)
        except StateStoreError as exc:
            self.flush_failures += 1
            self.__dict__.setdefault("fail_decisions", {"open": 0, "closed": 0})[self.fail_mode] += 1
            logger.warning("state store sqlite failed during append; %d ledger record(s) kept to be written "
                           "later: %s", len(self._pending), exc.message)
            if self._flusher is None:
                self._start_flusher()
            self._wake.set()

    async def flush(self) -> int:
        """Write the buffered ledger records now; returns how many were written."""
        return await self._call(self._write_pending)

    async def records(self, table: str, *, since: float | None = None) -> list[dict[str, Any]]:
        """The table's records (buffered ones included), oldest first."""

        def work(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute("SELECT data FROM ledger WHERE tbl = ? AND ts >= ? ORDER BY id",
                                (table, since if since is not None else float("-inf")))
            return [json.loads(r[0]) for r in rows]

        def flush_then_read() -> list[dict[str, Any]]:
            self._write_pending()
            return self._transaction(work)

        return await self._call(flush_then_read)

    # -- the write-behind ledger ------------------------------------------------------------------------------

    def _start_flusher(self) -> None:
        _open_stores.add(self)
        thread = threading.Thread(target=self._flush_loop, name="spoon-llm-sqlite-flusher", daemon=True)
        self._flusher = thread
        thread.start()

    def _flush_loop(self) -> None:
        # Sleeps until a record is buffered, waits the interval (records keep coming meanwhile), hands the batch
        # to the worker thread, and starts over.
        wake, stop = self._wake, self._stop
        while True:
            wake.wait()
            if stop.is_set():
                return
            wake.clear()
            if stop.wait(self.flush_interval):
                return
            self._submit_flush()

    def _submit_flush(self) -> None:
        if self._closed:
            return
        try:
            self._executor.submit(self._flush_job)
        except RuntimeError:  # the executor is shutting down: close() or interpreter exit writes the buffer
            pass

    def _flush_job(self) -> None:
        self._flush_queued = False
        try:
            self._write_pending()
        except Exception as exc:  # nobody awaits this job: say it here
            self.flush_failures += 1
            logger.error("SQLite store %s: writing %d ledger records failed, kept for the next flush: %s",
                         self.path, len(self._pending), exc)
            self._wake.set()  # try again after the interval, whether or not more records arrive

    def _write_pending(self) -> int:
        # On the worker thread, the only consumer of the buffer: one transaction for everything waiting. On
        # failure the records go back to the front of the buffer, in order.
        pending = self._pending
        if not pending:
            return 0
        batch = []
        while pending:
            batch.append(pending.popleft())
        try:
            rows = [(table, ts, _encode(record)) for table, ts, record in batch]
            self._transaction(lambda conn: conn.executemany(_INSERT_LEDGER, rows))
        except BaseException:
            pending.extendleft(reversed(batch))
            raise
        self.flushes += 1
        self.flushed_records += len(batch)
        return len(batch)

    def _stop_flusher(self) -> None:
        self._stop.set()
        self._wake.set()
        _open_stores.discard(self)

    def _flush_at_exit(self) -> None:
        # Interpreter exit without close(): the worker thread is gone, so write the buffer on a connection of
        # this thread. Never in a forked child, whose buffer is a copy of its parent's.
        if self._closed or not self._pending or os.getpid() != self._pid or self.path == ":memory:":
            return
        self._stop_flusher()
        batch = list(self._pending)
        try:
            conn = self._open()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_INSERT_LEDGER, [(table, ts, _encode(record)) for table, ts, record in batch])
                conn.execute("COMMIT")
            finally:
                conn.close()
            self._pending.clear()
        except sqlite3.Error as exc:
            logger.error("SQLite store %s: %d ledger records lost at exit: %s", self.path, len(batch), exc)

    # -- lifecycle --------------------------------------------------------------------------------------------

    def _close_connection(self) -> None:
        # Last job of the worker thread: write what is still buffered, then close.
        try:
            self._write_pending()
        except sqlite3.Error as exc:
            logger.error("SQLite store %s: %d ledger records could not be written at close: %s", self.path,
                         len(self._pending), exc)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Write the buffered ledger records, close the connection on its own thread, then stop the threads."""
        if self._closed:
            return
        self._closed = True
        self._stop_flusher()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=True)

    def close_sync(self) -> None:
        """Close from synchronous code (no running loop needed)."""
        if self._closed:
            return
        self._closed = True
        self._stop_flusher()
        self._executor.submit(self._close_connection).result()
        self._executor.shutdown(wait=True)

    def status(self) -> dict[str, Any]:
        """Backend, file path and the write-behind ledger's buffer."""
        return {**super().status(), "path": self.path,
                "ledger_buffered": len(self._pending), "ledger_flushes": self.flushes,
                "ledger_flush_failures": self.flush_failures}


@atexit.register
def _flush_at_exit() -> None:
    for store in list(_open_stores):
        store._flush_at_exit()
