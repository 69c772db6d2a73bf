"""Who is calling: the master key or a virtual key, read from ``Authorization: Bearer`` or ``x-api-key``.

The master key is compared with :func:`hmac.compare_digest`; a virtual key is looked up by its HMAC, which an
attacker cannot steer, so lookups leak nothing about stored keys through timing. Records are cached in-process and
the store's version is checked at most every ``refresh`` seconds (0.5 s by default), so a key revoked through any
replica is refused by every replica within that time plus one store round trip. When that check cannot reach the
store, ``fail_mode`` decides: ``closed`` refuses (503), ``open`` goes on with what is cached.

Failed attempts (a wrong, revoked or expired key, and through :meth:`Authenticator.record_failure` a failed admin
JWT) are counted per client address; past ``max_failures`` within ``failure_window`` seconds the address gets 429
with Retry-After until old failures age out.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from ..errors import ConfigurationError, LLMError
from .keys import KEY_PREFIX, KeyStore, KeyStoreUnavailableError, VirtualKey, hash_key, matches, tags_of

__all__ = ["Authenticator", "GatewayAuthError", "Principal"]

logger = logging.getLogger("spoon_llm.server.auth")

_MAX_CACHED = 10_000
_MAX_CLIENTS = 50_000


class GatewayAuthError(LLMError):
    """A request refused by the gateway itself (not by a provider).

    ``status`` is the HTTP status to answer with, ``code`` a stable machine-readable reason
    (``missing_api_key``, ``invalid_api_key``, ``key_revoked``, ``key_expired``, ``too_many_failures``,
    ``key_store_unavailable``, and the guard's ``model_not_allowed``, ``rate_limited``, ``too_many_concurrent``,
    ``budget_exceeded``), ``retry_after`` seconds when waiting helps. Messages never contain the presented key.
    """

    def __init__(self, message: str, *, status: int, code: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status}, code={self.code!r})"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, as the routes and the guard see it.

    ``alias`` is ``master`` for the master key; ``models`` ``None`` means every model or alias; ``tags`` become
    the request's economics tags; ``key`` is the virtual key's record (``None`` for the master key).
    """

    alias: str
    role: Literal["user", "admin"]
    models: frozenset[str] | None
    tags: Mapping[str, str]
    key_id: str | None
    key: VirtualKey | None = field(default=None, repr=False, compare=False)

    def may_use(self, model: str) -> bool:
        """True when this caller may call ``model`` (exact name or ``*`` pattern of its allow-list)."""
        models = self.models
        return models is None or model in models or matches(tuple(models), model)

    @property
    def is_admin(self) -> bool:
        """True for the master key and admin keys."""
        return self.role == "admin"


MASTER = Principal(alias="master", role="admin", models=None, tags={}, key_id=None)


def _principal(record: VirtualKey) -> Principal:
    return Principal(alias=record.alias, role=record.role,
                     models=frozenset(record.models) if record.models is not None else None,
                     tags=tags_of(record), key_id=record.id, key=record)


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def presented_key(headers: Mapping[str, str] | Sequence[tuple[bytes, bytes]]) -> str | None:
    """The key a request carries: ``Authorization: Bearer <key>`` first, else ``x-api-key``; ``None`` if neither.

    ``headers`` is a mapping (any case) or ASGI's list of lower-case ``(name, value)`` byte pairs.
    """
    authorization: str | None = None
    api_key: str | None = None
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            lowered = name.lower()
            if lowered == "authorization":
                authorization = value
            elif lowered == "x-api-key":
                api_key = value
    else:
        for raw_name, raw_value in headers:
            if raw_name == b"authorization":
                authorization = raw_value.decode("latin-1")
            elif raw_name == b"x-api-key":
                api_key = raw_value.decode("latin-1")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GatewayAuthError("the Authorization header must read 'Bearer <key>'", status=401,
                                   code="invalid_api_key")
        return token.strip()
    if api_key is not None and api_key.strip():
        return api_key.strip()
    return None


class Authenticator:
    """Turns a request's headers into a :class:`Principal`, or raises :class:`GatewayAuthError`.

    ``secret`` is the HMAC secret keys are stored under (see :func:`~spoon_llm.server.keys.server_secret`).
    ``refresh`` bounds how stale the record cache may be; ``max_failures`` failed attempts per client address
    within ``failure_window`` seconds earn a 429.
    """

    def __init__(self, *, master_key: str | None, store: KeyStore | None, secret: bytes | None,
                 fail_mode: Literal["closed", "open"] = "closed", refresh: float = 0.5, max_failures: int = 20,
                 failure_window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        if store is not None and secret is None:
            raise ConfigurationError("virtual keys need the server secret they are hashed with: set [server] "
                                     "secret (or SPOON_LLM_SERVER_SECRET) or a master key", key="server.secret")
        self._master = master_key.encode("utf-8") if master_key else None
        self.store = store
        self._secret = secret or b""
        self.fail_mode = fail_mode
        self.refresh = refresh
        self.max_failures = max_failures
        self.failure_window = failure_window
        self._clock = clock
        # key hash -> principal (None: no such key), valid while the store's version is the one last seen.
        self._cache: dict[str, Principal | None] = {}
        # Bumped whenever the cache is emptied, so a lookup that was in flight meanwhile does not cache what it read.
        self._generation = 0
        # key hash -> the lookup in flight, shared by every request presenting that key meanwhile.
        self._loading: dict[str, asyncio.Future[Principal | GatewayAuthError | None]] = {}
        self._version: int | None = None
        self._checked = -float("inf")
        self._checking: asyncio.Future[BaseException | None] | None = None
        self._failures: dict[str, deque[float]] = {}
        #: Counts for metrics: admitted, refused and throttled requests, and failed store checks.
        self.stats = {"admitted": 0, "refused": 0, "throttled": 0, "store_failures": 0}

    def __repr__(self) -> str:
        store = self.store.describe() if self.store is not None else None
        return f"Authenticator(master_key={'set' if self._master else None}, store={store!r})"

    async def authenticate(self, headers: Mapping[str, str] | Sequence[tuple[bytes, bytes]],
                           client: str | None) -> Principal:
        """The caller of a request with these headers from this client address."""
        address = client or "unknown"
        failures = self._failures.get(address)
        if failures:
            self._throttle(address, failures)
        try:
            token = presented_key(headers)
        except GatewayAuthError:
            self._failed(address)
            raise
        if token is None:
            self.stats["refused"] += 1
            raise GatewayAuthError("no API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                                   status=401, code="missing_api_key")
        master = self._master
        if master is not None and hmac.compare_digest(token.encode("utf-8"), master):
            self.stats["admitted"] += 1
            return MASTER
        principal = await self._lookup(token) if self.store is not None and token.startswith(KEY_PREFIX) else None
        if principal is None:
            self._failed(address)
            raise GatewayAuthError("invalid API key", status=401, code="invalid_api_key")
        record = principal.key
        assert record is not None  # a virtual key's principal always carries its record
        if record.revoked_at is not None:
            self._failed(address)
            raise GatewayAuthError(f"API key {record.alias!r} was revoked at {_when(record.revoked_at)}",
                                   status=401, code="key_revoked")
        if record.expires_at is not None and time.time() >= record.expires_at:
            self._failed(address)
            raise GatewayAuthError(f"API key {record.alias!r} expired at {_when(record.expires_at)}",
                                   status=401, code="key_expired")
        self.stats["admitted"] += 1
        return principal

    # -- the record cache ---------------------------------------------------------------------------------------

    async def _lookup(self, token: str) -> Principal | None:
        await self._fresh()
        digest = hash_key(token, self._secret)
        cache = self._cache
        if digest in cache:
            return cache[digest]
        loading = self._loading.get(digest)
        if loading is None:
            loading = self._loading[digest] = asyncio.ensure_future(self._load(digest))
        found = await asyncio.shield(loading)
        if isinstance(found, GatewayAuthError):  # each waiter raises its own copy
            raise GatewayAuthError(found.message, status=found.status, code=found.code,
                                   retry_after=found.retry_after)
        return found

    async def _load(self, digest: str) -> Principal | GatewayAuthError | None:
        # Returns the failure rather than raising it: several requests may be waiting for this one lookup.
        assert self.store is not None
        generation = self._generation
        try:
            record = await self.store.get_by_hash(digest)
        except KeyStoreUnavailableError as exc:
            self.stats["store_failures"] += 1
            return GatewayAuthError(f"the key store is unreachable, so the key cannot be checked: {exc}",
                                    status=503, code="key_store_unavailable", retry_after=1.0)
        finally:
            del self._loading[digest]
        principal = _principal(record) if record is not None else None
        if generation == self._generation:  # else the record may predate a change: serve it, do not keep it
            cache = self._cache
            if len(cache) >= _MAX_CACHED:
                cache.clear()
            cache[digest] = principal
        return principal

    async def _fresh(self) -> None:
        # At most one version read in flight; every request arriving meanwhile waits for that one.
        if self._clock() - self._checked < self.refresh:
            return
        checking = self._checking
        if checking is None:
            checking = self._checking = asyncio.ensure_future(self._check_version())
        error = await asyncio.shield(checking)
        if error is not None:
            raise GatewayAuthError(f"the key store is unreachable, so keys cannot be checked: {error}",
                                   status=503, code="key_store_unavailable", retry_after=1.0)

    async def _check_version(self) -> BaseException | None:
        # Returns the failure instead of raising it, so a check whose waiters all went away logs nothing.
        started = self._clock()
        assert self.store is not None
        try:
            version = await self.store.version()
        except KeyStoreUnavailableError as exc:
            self.stats["store_failures"] += 1
            if self.fail_mode == "open":
                logger.error("key store unreachable; fail_mode=open: serving cached keys: %s", exc)
                self._checked = started
                return None
            return exc
        finally:
            self._checking = None
        if version != self._version:
            self._cache.clear()
            self._generation += 1
            self._version = version
        self._checked = started  # the version read began here: the cache is as fresh as this moment
        return None

    def invalidate(self) -> None:
        """Forget cached records now (after this process changed a key)."""
        self._cache.clear()
        self._generation += 1
        self._checked = -float("inf")

    # -- failed-attempt throttling ------------------------------------------------------------------------------

    def check_throttle(self, address: str) -> None:
        """Raise 429 (:class:`GatewayAuthError` ``too_many_failures``) when ``address`` failed too often lately.

        For sign-ins checked elsewhere (admin JWTs), so their failures count toward the same limit as keys'.
        """
        failures = self._failures.get(address)
        if failures:
            self._throttle(address, failures)

    def record_failure(self, address: str) -> None:
        """Count one failed sign-in from ``address``."""
        self._failed(address)

    def _throttle(self, address: str, failures: deque[float]) -> None:
        now = self._clock()
        cutoff = now - self.failure_window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if len(failures) >= self.max_failures:
            self.stats["throttled"] += 1
            wait = failures[len(failures) - self.max_failures] + self.failure_window - now
            raise GatewayAuthError(f"too many failed authentication attempts from this address; retry in "
                                   f"{max(wait, 0.0):.0f}s", status=429, code="too_many_failures",
                                   retry_after=max(wait, 1.0))
        if not failures:
            del self._failures[address]

    def _failed(self, address: str) -> None:
        self.stats["refused"] += 1
        failures = self._failures.get(address)
        if failures is None:
            if len(self._failures) >= _MAX_CLIENTS:
                self._prune()
            failures = self._failures[address] = deque()
        failures.append(self._clock())

    def _prune(self) -> None:
        cutoff = self._clock() - self.failure_window
        for address in [a for a, f in self._failures.items() if not f or f[-1] <= cutoff]:
            del self._failures[address]
        if len(self._failures) >= _MAX_CLIENTS:  # a flood of distinct addresses: start over
            self._failures.clear()
