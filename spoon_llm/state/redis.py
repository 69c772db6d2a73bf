"""The Redis state store: limits, budgets and cool-downs shared by many processes and hosts.

Every operation is one Lua script, so read-check-write is atomic on the server; time is the server's own
(``TIME``), so hosts with skewed clocks still agree on windows. ``redis`` (extra ``redis``) is imported when a
store is built, never by ``import spoon_llm``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from .base import NOT_HELD, StateStore, StateStoreError
from .redis_cooldowns import CooldownMirror

_orjson: Any
try:  # the ``native`` and ``server`` extras install it
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the install
    _orjson = None
#: orjson writes these itself, differently from str(): handed to ``default`` as the standard library does.
_PASSTHROUGH = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS if _orjson is not None else 0

logger = logging.getLogger("spoon_llm.state")

__all__ = ["RedisStore"]

_T = TypeVar("_T")

_NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"

# KEYS: counters...; ARGV: ttl_ms (0 = none), deltas...
_ADD = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('INCRBY', key, ARGV[i + 1])
  if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return out
"""

# Applied at most once however often it is sent (a retry after a lost answer, a buffered write tried again).
# KEYS: marker, counters...; ARGV: marker_ttl_ms, ttl_ms (0 = none), deltas...
# Returns the counters' values (read, not changed, when the marker says it was applied already).
_ADD_ONCE = """
local applied = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])
local out = {}
for i = 2, #KEYS do
  if applied then
    out[i - 1] = redis.call('INCRBY', KEYS[i], ARGV[i + 1])
    if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
  else
    out[i - 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
end
return out
"""
#: How long a reserve or add_eventually marker outlives its write. A resend of a write the server applied but
#: whose answer was lost comes within seconds (the client's own retry, the next backlog retry); ten minutes of
#: markers keep Redis memory small (one short key per reservation and settle).
_ONCE_TTL_MS = 600_000

# The marker (last key) records an admission, so a resend after a lost answer is not reserved twice.
# KEYS: key, also..., marker; ARGV: amount, limit, ttl_ms, also deltas..., marker_ttl_ms
_RESERVE = """
local marker = KEYS[#KEYS]
local seen = redis.call('GET', marker)
if seen then return {1, tonumber(seen)} end
local value = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if value + amount > tonumber(ARGV[2]) then return {0, value} end
value = redis.call('INCRBY', KEYS[1], amount)
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
for i = 2, #KEYS - 1 do
  redis.call('INCRBY', KEYS[i], ARGV[i + 2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
end
redis.call('SET', marker, value, 'PX', ARGV[#ARGV])
return {1, value}
"""

# Sliding-window log. KEYS: zset (entry -> ts), hash (entry -> amount), total; ARGV: entry, amount, limit, window
_WINDOW_ACQUIRE = _NOW + """
local window = tonumber(ARGV[4])
local cutoff = now - window
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
for i = 1, #expired do
  total = total - tonumber(redis.call('HGET', KEYS[2], expired[i]) or '0')
  redis.call('HDEL', KEYS[2], expired[i])
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff) end
if total < 0 then total = 0 end
-- Already admitted: this is a retry of a call the server ran whose answer was lost (a timed-out read). Counting
-- it again would hold a slot no request uses.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {1, '0'} end
local amount = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local count = redis.call('ZCARD', KEYS[1])
local ttl = math.ceil(window * 1000) + 1000
if total + amount <= limit or (count == 0 and amount > limit) then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], amount)
  total = total + amount
  redis.call('SET', KEYS[3], total, 'PX', ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {1, '0'}
end
redis.call('SET', KEYS[3], total, 'PX', ttl)
local need = total + amount - limit
local freed = 0
local oldest = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #oldest, 2 do
  freed = freed + tonumber(redis.call('HGET', KEYS[2], oldest[i]) or '0')
  if freed >= need then
    local wait = tonumber(oldest[i + 1]) + window - now
    if wait < 0 then wait = 0 end
    return {0, tostring(wait)}
  end
end
return {0, tostring(window)}
"""

# Applied at most once (KEYS[4] marks it), so a resend after a lost answer does not settle or refund twice.
# KEYS: zset, hash, total, marker; ARGV: entry, delta, marker_ttl_ms
_WINDOW_ADJUST = """
if not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[3]) then return 0 end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current then return 0 end
local new = tonumber(current) + tonumber(ARGV[2])
if new < 0 then new = 0 end
redis.call('HSET', KEYS[2], ARGV[1], new)
local total = tonumber(redis.call('GET', KEYS[3]) or '0') + new - tonumber(current)
if total < 0 then total = 0 end
redis.call('SET', KEYS[3], total, 'KEEPTTL')
return 1
"""

# GCRA. KEYS: tat; ARGV: amount, rate, burst
_BUCKET_ACQUIRE = _NOW + """
local interval = 1 / tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[1]) * interval
local allow_at = new_tat - tonumber(ARGV[3]) * interval
if allow_at - now > 1e-9 and tat > now then return {0, tostring(allow_at - now)} end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, '0'}
"""

# Applied at most once, as _WINDOW_ADJUST. KEYS: tat, marker; ARGV: delta, rate, marker_ttl_ms
_BUCKET_ADJUST = _NOW + """
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then return 0 end
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local tat = tonumber(current) + tonumber(ARGV[1]) / tonumber(ARGV[2])
if tat < now then tat = now end
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return 1
"""

# KEYS: cooldown; ARGV: ms, channel (what is left is published there for the stores' cool-down mirrors)
_COOLDOWN_SET = """
local left = redis.call('PTTL', KEYS[1])
local ms = tonumber(ARGV[1])
if left < ms then redis.call('SET', KEYS[1], '1', 'PX', ms); left = ms end
redis.call('PUBLISH', ARGV[2], KEYS[1] .. ' ' .. left)
return 1
"""


def _encode(record: Mapping[str, Any]) -> bytes | str:
    """A ledger record as compact JSON: orjson when installed, else (or for what it refuses) the standard library.

    Values JSON has no type for (dates and datetimes, dataclasses, decimals...) are written as their ``str()``
    either way.
    """
    if _orjson is not None:
        try:
            encoded: bytes = _orjson.dumps(record, default=str, option=_PASSTHROUGH)
            return encoded
        except TypeError:  # non-string keys, integers beyond 64 bits: the standard library takes those
            pass
    return json.dumps(record, separators=(",", ":"), default=str)


class RedisStore(StateStore):
    """State in Redis (redis-py asyncio), one Lua script per operation.

    ``url`` like ``redis://127.0.0.1:6379/0``; ``timeout`` bounds each command. Connections come from a pool of
    ``max_connections``; getting one waits up to ``pool_timeout`` seconds, for a busy one to come back or a new
    one to connect (rather than failing at once with "Too many connections", or when hundreds of connections
    open at once on a busy machine). A broken or timed-out connection is dropped and the command tried up to
    twice more on a fresh one (a restarted server is reconnected to). Such a resend of a command the server had
    run counts once for reservations, budget settles and releases, window admissions and token settles/refunds
    (they carry a marker). A failed operation is decided by :attr:`fail_mode` (see :class:`StateStore`); budget
    settles and releases and token settles/refunds that fail are also kept and applied later, exactly once
    (:meth:`flush`, or a retry a moment later). Ledger records that cannot be written are kept (up to
    ``max_backlog``) and written with the next append or by a retry a moment later. Records from the request path
    (:meth:`append_nowait`) are written behind, ``flush_interval`` seconds after the first is buffered, many in
    one pipeline; an unclean end (``SIGKILL``) loses at most those buffered. ``max_records`` caps each ledger
    list. Pass ``client`` to reuse an existing ``redis.asyncio.Redis``.
    """

    name = "redis"
    shared = True

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "spoon_llm", timeout: float = 1.0,
                 max_records: int = 100_000, client: Any = None, max_connections: int = 256,
                 pool_timeout: float = 5.0, max_backlog: int = 100_000,
                 fail_mode: Literal["closed", "open"] = "closed", flush_interval: float = 0.05) -> None:
        try:
            import redis.asyncio as aioredis
            import redis.exceptions as redis_errors
            from redis.asyncio.retry import Retry
            from redis.backoff import ExponentialBackoff
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError('the Redis state store needs redis-py: pip install "spoon-llm[redis]"') from exc
        self.url = url
        self.prefix = prefix
        self.fail_mode = fail_mode
        self.flush_interval = flush_interval
        self._max_records = max_records
        self._owns_client = client is None
        if client is None:
            # Two quick retries on a dropped or timed-out connection (a restarted server, a stalled moment on a
            # busy host), not redis-py's default of ten with back-off up to 10 s: a dead server must be
            # decided by fail_mode within a few timeouts.
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=pool_timeout, socket_timeout=timeout,
                socket_connect_timeout=max(timeout, pool_timeout), health_check_interval=0,
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2,
                            supported_errors=(redis_errors.ConnectionError, redis_errors.TimeoutError)))
            client = aioredis.Redis.from_pool(pool)  # closing the client closes the pool
        self._client = client
        self._errors: tuple[type[BaseException], ...] = (redis_errors.RedisError, OSError, asyncio.TimeoutError)
        self._add = self._client.register_script(_ADD)
        self._add_once = self._client.register_script(_ADD_ONCE)
        self._reserve = self._client.register_script(_RESERVE)
        self._window_acquire = self._client.register_script(_WINDOW_ACQUIRE)
        self._window_adjust = self._client.register_script(_WINDOW_ADJUST)
        self._bucket_acquire = self._client.register_script(_BUCKET_ACQUIRE)
        self._bucket_adjust = self._client.register_script(_BUCKET_ADJUST)
        self._cooldown_set = self._client.register_script(_COOLDOWN_SET)
        # Cool-down checks answered in-process while a subscription keeps them fresh (see redis_cooldowns).
        self._cooldowns = CooldownMirror(self._client, self._key("cooldowns"))
        self._cooldown_keys: dict[str, str] = {}
        self.failures = 0
        # Ledger records not yet written (the server was unreachable): (list key, JSON).
        self._backlog: deque[tuple[str, bytes | str]] = deque()
        self._max_backlog = max_backlog
        self._writing = False
        self._retry: asyncio.Task[None] | None = None
        self._flush: asyncio.Task[None] | None = None  # the background write of append_nowait's records
        self.ledger_dropped = 0
        # Marked changes not yet applied (add_eventually, window and bucket adjusts): (script, keys with the
        # marker, args), each applied once.
        self._pending_adds: deque[tuple[Any, list[str], list[Any]]] = deque()
        self._once_ids = (f"{os.getpid()}.{os.urandom(6).hex()}.{n}" for n in itertools.count())
        self.adds_dropped = 0

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def _window_keys(self, key: str) -> list[str]:
        base = f"{self.prefix}:{{{key}}}"  # a hash tag keeps the three keys on one cluster slot
        return [base + ":z", base + ":h", base + ":t"]

    def _failure(self, exc: BaseException, operation: str) -> StateStoreError:
        self.failures += 1
        return StateStoreError(f"Redis store at {self._safe_url()} failed during {operation}: "
                               f"{type(exc).__name__}: {exc}", store=self._safe_url(), operation=operation)

    async def _call(self, op: Callable[[], Awaitable[_T]], operation: str, permissive: _T) -> _T:
        try:
            return await op()
        except self._errors as exc:
            error = self._failure(exc, operation)
        return self.decide(operation, error, permissive)

    def _safe_url(self) -> str:
        # Never show a password from the URL.
        scheme, sep, rest = self.url.partition("://")
        return f"{scheme}{sep}{rest.rpartition('@')[2]}"

    # -- counters ---------------------------------------------------------------------------------------------

    async def get(self, key: str) -> int:
        """The counter's value."""
        value = await self._call(lambda: self._client.get(self._key(key)), "get", None)
        return int(value) if value is not None else 0

    async def get_many(self, keys: Sequence[str]) -> list[int]:
        """Several counters at once (MGET)."""
        if not keys:
            return []
        values = await self._call(lambda: self._client.mget([self._key(k) for k in keys]), "get_many",
                                  [None] * len(keys))
        return [int(v) if v is not None else 0 for v in values]

    async def add(self, deltas: Mapping[str, int], *, ttl: float | None = None) -> list[int]:
        """Add each delta atomically (one script)."""
        keys = [self._key(k) for k in deltas]
        ttl_ms = int(ttl * 1000) if ttl else 0
        result = await self._call(lambda: self._add(keys=keys, args=[ttl_ms, *deltas.values()]), "add",
                                  [0] * len(keys))
        return [int(v) for v in result]

    async def add_eventually(self, deltas: Mapping[str, int], *, ttl: float | None = None) -> list[int] | None:
        """:meth:`add`, applied exactly once: now, or kept (``None`` returned) and applied by a retry.

        Kept when the server or a pooled connection is not available now; a marker key makes a resent add a no-op.
        """
        ttl_ms = int(ttl * 1000) if ttl else 0
        op = (self._add_once, [self._key("once:" + next(self._once_ids)), *(self._key(k) for k in deltas)],
              [_ONCE_TTL_MS, ttl_ms, *deltas.values()])
        try:
            values = await self._add_once(keys=op[1], args=op[2])
        except self._errors as exc:
            error = self._failure(exc, "add")
            self._keep_add(op)
            logger.warning("state store redis failed during add; kept to be applied later (%d pending): %s",
                           len(self._pending_adds), error.message)
            self._schedule_retry()
            return None
        return [int(v) for v in values]

    def _keep_add(self, op: tuple[Any, list[str], list[Any]]) -> None:
        pending = self._pending_adds
        if len(pending) >= self._max_backlog:
            pending.popleft()
            self.adds_dropped += 1
            logger.error("Redis pending-add backlog full (%d): the oldest counter change is dropped",
                         self._max_backlog)
        pending.append(op)

    async def _apply_pending_adds(self) -> int:
        """Apply the kept adds in order; how many were applied (a failure stops and schedules a retry)."""
        pending = self._pending_adds
        applied = 0
        while pending:
            op = pending[0]
            try:
                await op[0](keys=op[1], args=op[2])
            except self._errors as exc:
                error = self._failure(exc, "add")
                logger.warning("state store redis still failing; %d counter change(s) kept: %s", len(pending),
                               error.message)
                self._schedule_retry()
                break
            applied += 1
            with contextlib.suppress(ValueError):  # a concurrent flush may have applied and removed it already
                pending.remove(op)
        return applied

    async def reserve(self, key: str, amount: int, limit: int, *, also: Mapping[str, int] | None = None,
                      ttl: float | None = None) -> tuple[bool, int]:
        """Add ``amount`` only if the counter stays within ``limit``."""
        others = dict(also or {})
        keys = [self._key(key), *(self._key(k) for k in others), self._key("once:" + next(self._once_ids))]
        ttl_ms = int(ttl * 1000) if ttl else 0
        ok, value = await self._call(lambda: self._reserve(keys=keys, args=[amount, limit, ttl_ms,
                                                                            *others.values(), _ONCE_TTL_MS]),
                                     "reserve", (1, NOT_HELD))
        return bool(ok), int(value)

    # -- windows and buckets ----------------------------------------------------------------------------------

    async def window_acquire(self, key: str, entry: str, amount: int, limit: int,
                             window: float) -> tuple[bool, float]:
        """Sliding-window log in a sorted set."""
        ok, wait = await self._call(lambda: self._window_acquire(
            keys=self._window_keys(key), args=[entry, amount, limit, repr(float(window))]), "window_acquire",
            (1, float(NOT_HELD)))
        return bool(ok), float(wait)

    async def window_adjust(self, key: str, entry: str, delta: int) -> None:
        """Settle an admitted entry, exactly once (see :meth:`_apply_once`)."""
        keys = self._window_keys(key)
        keys.append(keys[0][:-2] + ":once:" + next(self._once_ids))  # the window's hash tag: the same slot
        await self._apply_once((self._window_adjust, keys, [entry, delta, _ONCE_TTL_MS]), "window_adjust")

    async def bucket_acquire(self, key: str, amount: float, rate: float, burst: float) -> tuple[bool, float]:
        """GCRA on the server's clock."""
        ok, wait = await self._call(lambda: self._bucket_acquire(
            keys=[self._key(key)], args=[repr(float(amount)), repr(float(rate)), repr(float(burst))]),
            "bucket_acquire", (1, float(NOT_HELD)))
        return bool(ok), float(wait)

    async def bucket_adjust(self, key: str, delta: float, rate: float) -> None:
        """Move the theoretical arrival time, exactly once (see :meth:`_apply_once`)."""
        keys = [self._key(key), self._key("once:" + next(self._once_ids))]
        await self._apply_once((self._bucket_adjust, keys, [repr(float(delta)), repr(float(rate)), _ONCE_TTL_MS]),
                               "bucket_adjust")

    async def _apply_once(self, op: tuple[Any, list[str], list[Any]], operation: str) -> None:
        """Run a marked script (a settle or refund of tokens): its marker makes a resend a no-op.

        When the server cannot be reached the change is kept and applied by the retry (as :meth:`add_eventually`
        keeps budget changes), and the failure is still decided by :attr:`fail_mode` as before.
        """
        try:
            await op[0](keys=op[1], args=op[2])
        except self._errors as exc:
            error = self._failure(exc, operation)
            self._keep_add(op)
            self._schedule_retry()
            self.decide(operation, error, None)

    # -- cool-downs -------------------------------------------------------------------------------------------

    async def cooldown_set(self, key: str, seconds: float) -> None:
        """A key with a TTL: the cool-down ends when Redis expires it."""
        ms = max(int(seconds * 1000), 1)
        channel = self._cooldowns.channel
        await self._call(lambda: self._cooldown_set(keys=[self._key("cooldown:" + key)], args=[ms, channel]),
                         "cooldown_set", None)

    def cooldown_known(self, key: str) -> float | None:
        """Seconds left of the cool-down from the in-process mirror, or ``None`` while it is not fresh."""
        full = self._cooldown_keys.get(key)
        if full is None:  # the same few keys (deployments, virtual keys) on every request: built once each
            if len(self._cooldown_keys) >= 10_000:
                self._cooldown_keys.clear()
            full = self._cooldown_keys[key] = self._key("cooldown:" + key)
        return self._cooldowns.remaining(full)

    async def cooldown_remaining(self, key: str) -> float:
        """Seconds left of the cool-down (the key's TTL), from the in-process mirror while it is fresh."""
        full = self._key("cooldown:" + key)
        mirror = self._cooldowns
        known = mirror.remaining(full)
        if known is not None:
            return known
        generation, failures = mirror.generation(), self.failures
        left = await self._call(lambda: self._client.pttl(full), "cooldown_remaining", 0)
        if self.failures == failures:  # a fail-mode answer is not the server's: never kept
            mirror.learn(full, int(left), generation)
        return max(int(left), 0) / 1000.0

    # -- ledger -----------------------------------------------------------------------------------------------

    async def append(self, table: str, record: Mapping[str, Any]) -> None:
        """Append to a capped list. Never raises: an unreachable server leaves the record buffered for later."""
        self._buffer(table, record)
        if not self._writing:  # a write under way takes this record along
            await self._write_backlog()

    def append_nowait(self, table: str, record: Mapping[str, Any]) -> Awaitable[None] | None:
        """Buffer the record for a background write ``flush_interval`` seconds later; never waits.

        Every record buffered by then goes in that write's one pipeline, so requests share a round trip instead of
        paying one each. :meth:`records` and :meth:`close` write the buffer first.
        """
        self._buffer(table, record)
        flush = self._flush
        if not self._writing and (flush is None or flush.done()) and (self._retry is None or self._retry.done()):
            self._flush = asyncio.get_running_loop().create_task(self._write_soon())
        return None

    def _buffer(self, table: str, record: Mapping[str, Any]) -> None:
        backlog = self._backlog
        if len(backlog) >= self._max_backlog:
            backlog.popleft()
            self.ledger_dropped += 1
            logger.error("Redis ledger backlog full (%d records): the oldest record is dropped", self._max_backlog)
        backlog.append((self._key("ledger:" + table), _encode(record)))

    async def _write_soon(self) -> None:
        if self.flush_interval > 0:
            await asyncio.sleep(self.flush_interval)
        if self._backlog and not self._writing:
            await self._write_backlog()  # a failure keeps the records and schedules the retry

    async def _flushed(self) -> None:
        """Write what the background write would: now (its wait cut short), or by awaiting the write under way."""
        flush, self._flush = self._flush, None
        if flush is None or flush.done():
            return
        if self._writing:
            await asyncio.shield(flush)
            return
        flush.cancel()  # still waiting out flush_interval: nothing written yet
        with contextlib.suppress(asyncio.CancelledError):
            await flush
        if self._backlog and not self._writing:
            await self._write_backlog()

    async def _write_backlog(self) -> bool:
        """Write the buffered records in order; False (and a retry scheduled) when the server is unreachable."""
        self._writing = True
        backlog = self._backlog
        try:
            while backlog:
                batch = [backlog[i] for i in range(min(len(backlog), 512))]
                try:
                    # One RPUSH of many values per list (in order), not one command per record.
                    lists: dict[str, list[bytes | str]] = {}
                    for key, data in batch:
                        values = lists.get(key)
                        if values is None:
                            lists[key] = [data]
                        else:
                            values.append(data)
                    async with self._client.pipeline(transaction=True) as pipe:
                        for key, values in lists.items():
                            pipe.rpush(key, *values)
                            pipe.ltrim(key, -self._max_records, -1)
                        await pipe.execute()
                except self._errors as exc:
                    error = self._failure(exc, "append")
                    self.__dict__.setdefault("fail_decisions", {"open": 0, "closed": 0})[self.fail_mode] += 1
                    logger.warning("state store redis failed during append; %d ledger record(s) kept to be "
                                   "written later: %s", len(backlog), error.message)
                    self._schedule_retry()
                    return False
                for _ in batch:
                    backlog.popleft()
            return True
        finally:
            self._writing = False

    def _schedule_retry(self) -> None:
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(self._retry_later())

    async def _retry_later(self) -> None:
        delay = 0.5
        while self._backlog or self._pending_adds:
            await asyncio.sleep(delay)
            if self._pending_adds:
                await self._apply_pending_adds()
                if self._pending_adds:
                    delay = min(delay * 2, 10.0)
                    continue
            if self._writing or not self._backlog:
                continue
            if await self._write_backlog():
                return
            delay = min(delay * 2, 10.0)

    async def records(self, table: str, *, since: float | None = None) -> list[dict[str, Any]]:
        """The list's records, oldest first (buffered ones are written first when the server answers)."""
        await self._flushed()
        if self._backlog and not self._writing:
            await self._write_backlog()
        rows: list[Any] = await self._call(lambda: self._client.lrange(self._key("ledger:" + table), 0, -1),
                                           "records", [])
        out = [json.loads(r) for r in rows]
        return [r for r in out if since is None or r.get("ts", 0.0) >= since]

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def ping(self) -> bool:
        """True when the server answers."""
        try:
            return bool(await self._client.ping())
        except self._errors as exc:
            self._failure(exc, "ping")
            return False

    async def flush(self) -> int:
        """Apply the kept counter changes and write the buffered ledger records now, as far as the server answers.

        Returns how many were written; the rest stay kept (and a retry scheduled).
        """
        applied = await self._apply_pending_adds()
        await self._flushed()
        before = len(self._backlog)
        if before and not self._writing:
            await self._write_backlog()
        return applied + before - len(self._backlog)

    async def close(self) -> None:
        """Write what the ledger still buffers (if the server answers) and close the pool (when this store made it)."""
        await self._cooldowns.close()
        await self._apply_pending_adds()
        await self._flushed()
        retry, self._retry = self._retry, None
        if retry is not None:
            retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retry
        if self._backlog and not self._writing:
            await self._write_backlog()
            if self._retry is not None:  # the write failed again: nothing more to do once closed
                self._retry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._retry
                self._retry = None
            if self._backlog:
                logger.error("Redis store closed with %d ledger record(s) unwritten", len(self._backlog))
        if self._retry is not None and not self._retry.done():  # only kept adds were left: they cannot be now
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
            self._retry = None
        if self._pending_adds:
            logger.error("Redis store closed with %d counter change(s) unapplied", len(self._pending_adds))
        if self._owns_client:
            await self._client.aclose()

    def status(self) -> dict[str, Any]:
        """Backend, URL without credentials, failures, the ledger backlog and the fail-mode decisions."""
        return {**super().status(), "url": self._safe_url(), "failures": self.failures,
                "ledger_backlog": len(self._backlog), "ledger_dropped": self.ledger_dropped,
                "pending_adds": len(self._pending_adds), "adds_dropped": self.adds_dropped}
