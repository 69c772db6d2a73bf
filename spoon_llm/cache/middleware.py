"""The response cache as middleware: answers an attempt from the cache, or stores what the provider answered.

It wraps whole attempts (``around_attempt`` / ``around_stream``), so a hit reserves no budget, takes no rate-limit
slot, reaches no provider and costs nothing; a miss runs the attempt as usual and stores the priced answer. Over
a backend that never waits (memory) it also offers that hook as two plain halves, :meth:`CacheMiddleware.lookup`
and :meth:`CacheMiddleware.store` (see :meth:`~spoon_llm.middleware.base.Middleware.short_circuit`): a miss then
adds no coroutine to the request.
Errors and partial streams are never stored; a failing backend turns into a miss (counted in ``errors``).

A hit comes back with ``cost`` zero, ``usage`` zero and ``metadata["cache"]`` holding ``hit``, the key, when it
was stored, and the original usage and cost (the money the hit saved). A cached answer replays as a stream (its
reasoning, text, tool calls and final usage), and a streamed answer, once complete, serves whole requests too.

Per call, ``cache=False`` bypasses the cache, ``cache="refresh"`` skips the lookup but stores the new answer,
and a number stores it for that many seconds; ``cache_namespace="..."`` keeps entries apart.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from ..middleware.base import AttemptContext, Middleware
from ..types import CostInfo, EmbeddingResponse, LLMResponse, LLMResponseChunk, TokenUsage
from ._key import CACHEABLE, _dumps_plain, canonical_bytes, digest, tag_namespace

if TYPE_CHECKING:
    from .backends import CacheBackend

__all__ = ["CacheMiddleware", "CachePolicy"]

#: A key as backends get it: the digest of the canonical request, or, for ``local`` backends (memory), the
#: request itself: its :func:`~spoon_llm.cache._key.canonical_bytes` less the opening ``[`` (see _plan).
Key: TypeAlias = "str | bytes"
#: What a missed lookup leaves for the store: the key and the entry's time to live.
Plan: TypeAlias = "tuple[Key, float | None]"

logger = logging.getLogger("spoon_llm.cache")

#: Fields of a response that belong to one request, not to the answer.
_PER_REQUEST = {"attempts", "fallback_path", "deployment", "cost", "request_id", "duration", "timestamp"}
_TYPES: dict[str, type[LLMResponse] | type[EmbeddingResponse]] = {
    "LLMResponse": LLMResponse, "EmbeddingResponse": EmbeddingResponse}

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
    #: Plain JSON values only: anything else (a datetime, a dataclass, a subclass of dict...) raises, and pydantic
    #: writes that answer instead, as it would write it.
    _STRICT: int | None = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                           | orjson.OPT_PASSTHROUGH_SUBCLASS)
    _orjson_dumps: Any = orjson.dumps
except ImportError:  # pragma: no cover - core-only install
    import json

    _loads = json.loads
    _orjson_dumps = _STRICT = None


#: Seconds an answer waits at most for its store to a backend that waits (SQLite, Redis) before going on.
STORE_WAIT = 0.5


class CachePolicy:
    """Which provider sections are cached and for how long (``[cache]`` and per-provider ``enable_caching``).

    A TTL of ``None`` means "until evicted"; a section's ``cache_ttl`` of ``0`` means the same. A policy is fixed
    once made (``per_provider`` is read-only): what a section resolves to is worked out once.
    """

    __slots__ = ("_resolved", "default_enabled", "default_ttl", "per_provider")

    def __init__(self, default_enabled: bool = True, default_ttl: float | None = 3600.0,
                 per_provider: Mapping[str, tuple[bool | None, float | None]] | None = None) -> None:
        self.default_enabled = default_enabled
        self.default_ttl = default_ttl
        self.per_provider: Mapping[str, tuple[bool | None, float | None]] = MappingProxyType(dict(per_provider or {}))
        self._resolved: dict[str, tuple[bool, float | None]] = {}

    def for_provider(self, provider: str) -> tuple[bool, float | None]:
        """``(enabled, ttl)`` for a provider section."""
        resolved = self._resolved.get(provider)
        if resolved is None:
            enabled, ttl = self.per_provider.get(provider, (None, None))
            resolved = self._resolved[provider] = (self.default_enabled if enabled is None else enabled,
                                                   self.default_ttl if ttl is None else (ttl or None))
        return resolved


class CacheMiddleware(Middleware):
    """Exact-match response cache over a :class:`~spoon_llm.cache.backends.CacheBackend`."""

    name = "cache"

    def __init__(self, backend: CacheBackend, *, policy: CachePolicy | None = None, namespace: str = "default",
                 key_tags: Sequence[str] = ()) -> None:
        self.backend = backend
        self.policy = policy if policy is not None else CachePolicy()
        self.namespace = namespace
        self.key_tags = tuple(key_tags)
        self.hits = self.misses = self.stores = self.errors = self.skipped = 0
        self.saved_usd = 0.0
        # Backends that answer without waiting (memory) offer plain twins of get/set: no coroutine per request.
        self._get_now: Callable[[Key], bytes | None] | None = getattr(backend, "get_now", None)
        self._set_now: Callable[[Key, bytes, float | None], None] | None = getattr(backend, "set_now", None)
        # A backend whose entries never leave this process (memory) is given the request itself as the key (no
        # digest per request) and entries in the compact layout (see _entry), less their opening bracket: like
        # the key (see _plan), a slice of what orjson wrote is an exact-size copy of it.
        self._local = bool(getattr(backend, "local", False))
        # ... and may answer "is anything held under this key?" without a Python frame: a miss asks only that.
        self._contains: Callable[[Key], bool] | None = getattr(backend, "contains", None)
        # A backend that waits (SQLite, Redis) is written by a task the answer waits for at most STORE_WAIT (a slow
        # store never holds it into its deadline). Until a write lands, this process reads the entry from here,
        # and writes to one key land in the order they were made.
        self._unwritten: dict[Key, bytes] = {}
        self._writing: dict[Key, asyncio.Task[None]] = {}

    # -- keys and policy -------------------------------------------------------------------------------------

    def _plan(self, ctx: AttemptContext) -> Plan | None:
        """``(key, ttl)`` for a cacheable attempt, ``None`` when it bypasses the cache.

        The key is the request itself for a backend local to this process (memory), else its digest.
        """
        directive = ctx.cache
        if directive is False:  # bypassed: before anything else
            return None
        provider = ctx.deployment.provider_name
        enabled, ttl = self.policy._resolved.get(provider) or self.policy.for_provider(provider)
        if directive is None:
            if not enabled:
                return None
        elif directive.__class__ is not str and directive is not True:  # a number: this call's time to live
            ttl = float(directive)
        if ctx.operation not in CACHEABLE:
            return None
        try:
            # A call's own namespace replaces the configured one; the key tags narrow either (tenants apart).
            namespace = ctx.cache_namespace or self.namespace
            request = canonical_bytes(ctx, tag_namespace(namespace, ctx.tags, self.key_tags) if self.key_tags
                                      else namespace)
        except Exception as exc:  # an argument we cannot canonicalise: serve it uncached
            self.skipped += 1
            logger.debug("request not cacheable: %s", type(exc).__name__)
            return None
        # A local key is a slice of the request: an exact-size copy, where the bytes orjson returns keep the whole
        # buffer they were written into (4 KiB for a short request), which a held key would keep too.
        return (request[1:] if self._local else digest(request)), ttl

    # -- storage -------------------------------------------------------------------------------------------

    def _failed(self, what: str, exc: Exception) -> None:
        """Count and log a failing backend (the request goes on without the cache)."""
        self.errors += 1
        logger.warning("response cache %s failed (%s): %s", what, type(exc).__name__,
                       "serving from the provider" if what == "lookup" else "answer served uncached")

    async def _fetch(self, key: Key) -> bytes | None:
        unwritten = self._unwritten.get(key)
        if unwritten is not None:
            return unwritten
        try:
            # A bytes key only ever reaches a backend that declared itself local (it takes them).
            return self._get_now(key) if self._get_now is not None else await self.backend.get(key)  # type: ignore[arg-type]
        except Exception as exc:
            self._failed("lookup", exc)
            return None

    def _put(self, key: Key, response: Any, ttl: float | None) -> asyncio.Task[None] | None:
        """Store ``response`` under ``key``: at once for a backend that never waits, else as a task (returned)."""
        try:
            if self._local:
                self._set_now(key, _entry(response, True)[1:], ttl)  # type: ignore[misc]
            elif self._set_now is not None:
                self._set_now(key, _entry(response), ttl)
            else:
                entry = _entry(response)  # written now: what is stored is the answer as it was returned
                self._unwritten[key] = entry
                task = self._writing[key] = asyncio.ensure_future(
                    self._write(key, entry, ttl, self._writing.get(key)))
                return task
        except Exception as exc:
            self._failed("store", exc)
        else:
            self.stores += 1
        return None

    @staticmethod
    async def _landed(task: asyncio.Task[None] | None) -> None:
        """Give a write up to STORE_WAIT to land before the answer goes on.

        A script that ends right after its call keeps what it stored; a slower write lands in the background,
        never holding the answer longer.
        """
        if task is not None:
            await asyncio.wait((task,), timeout=STORE_WAIT)

    async def _write(self, key: Key, entry: bytes, ttl: float | None, previous: asyncio.Task[None] | None) -> None:
        try:
            if previous is not None:  # the earlier write to this key lands first
                await asyncio.wait((previous,))
            await self.backend.set(key, entry, ttl)  # type: ignore[arg-type]
        except Exception as exc:
            self._failed("store", exc)
        else:
            self.stores += 1
        finally:
            if self._unwritten.get(key) is entry:
                del self._unwritten[key]
            if self._writing.get(key) is asyncio.current_task():
                del self._writing[key]

    async def flush(self) -> None:
        """Wait until every answer stored so far has reached the backend (or failed to, counted in ``errors``)."""
        while self._writing:
            await asyncio.wait(list(self._writing.values()))

    def _restore(self, ctx: AttemptContext, key: Key, raw: bytes) -> LLMResponse | EmbeddingResponse | None:
        """The answer stored in ``raw``, as a hit; ``None`` (counted as an error) when it cannot be read back."""
        embed = ctx.operation == "embed"
        try:
            data, kind_name, cost, stored = _loads(b"[" + raw if self._local else raw)
            if data.__class__ is list:  # the compact layout: the answer's fields in the order of _ANSWER_FIELDS
                data = dict(zip(_ANSWER_FIELDS, data, strict=True))
            kind = _TYPES[kind_name]
            if (kind is EmbeddingResponse) != embed:
                return None  # an entry of the other kind under this key: a miss, not an error
            if cost is not None and (cost.__class__ not in (int, float) or not math.isfinite(cost)):
                raise ValueError("the stored price is not a number")
            response = kind.model_validate(data)
        except Exception:
            self.errors += 1
            return None
        response.metadata["cache"] = {"hit": True, "key": key if isinstance(key, str) else digest(b"[" + key),
                                      "stored": stored, "usage": data.get("usage"), "cost": cost}
        response.usage = TokenUsage()
        response.cost = CostInfo(source="cache")
        self.hits += 1
        if cost:
            self.saved_usd += float(cost)
        return response

    # -- the hooks -----------------------------------------------------------------------------------------

    def short_circuit(self) -> tuple[Callable[[AttemptContext], Any], Callable[[AttemptContext, Any], None]] | None:
        """:meth:`lookup` and :meth:`store` when the backend answers without waiting (memory), else ``None``."""
        if self._get_now is None or self._set_now is None:
            return None
        return self.lookup, self.store

    def lookup(self, ctx: AttemptContext) -> LLMResponse | EmbeddingResponse | None:
        """The cached answer (a hit), or ``None``: a miss (``ctx.ticket`` set for :meth:`store`) or a bypass.

        For a backend with ``get_now`` only (see :meth:`short_circuit`).
        """
        plan = self._plan(ctx)
        if plan is None:
            return None
        if ctx.cache != "refresh":
            key = plan[0]
            try:
                # A miss asks only whether anything is held: a C call where get_now is a Python frame.
                raw = self._get_now(key) if self._contains is None or self._contains(key) else None  # type: ignore[misc]
            except Exception as exc:
                self._failed("lookup", exc)
                raw = None
            if raw is not None and (hit := self._restore(ctx, key, raw)) is not None:
                return hit
            self.misses += 1
        ctx.ticket = plan
        return None

    def store(self, ctx: AttemptContext, response: Any) -> None:
        """Store the answer of an attempt :meth:`lookup` missed (a backend failure is counted, never raised)."""
        if response.__class__ is LLMResponse or isinstance(response, (LLMResponse, EmbeddingResponse)):
            try:
                self._set_now(ctx.ticket[0], _entry(response, True)[1:] if self._local else _entry(response),  # type: ignore[misc]
                              ctx.ticket[1])
            except Exception as exc:
                self._failed("store", exc)
            else:
                self.stores += 1

    def around_attempt(self, ctx: AttemptContext, call_next: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        """Answer from the cache, or run the attempt and store its answer.

        A bypassed attempt is handed straight on (no coroutine of ours around it). The manager calls
        :meth:`lookup` and :meth:`store` instead when this is its only wrapper and the backend never waits.
        """
        if self._get_now is not None and self._set_now is not None:
            ctx.ticket = None
            hit = self.lookup(ctx)
            if hit is not None:
                return _answered(hit)
            ticket = ctx.ticket
            return call_next() if ticket is None else self._run_and_store(ctx, call_next, ticket)
        plan = self._plan(ctx)
        if plan is None:
            return call_next()
        return self._through_cache(ctx, call_next, plan)

    async def _run_and_store(self, ctx: AttemptContext, call_next: Callable[[], Awaitable[Any]],
                             ticket: Plan) -> Any:
        response = await call_next()
        ctx.ticket = ticket  # an inner wrapper may have used the slot meanwhile
        self.store(ctx, response)
        return response

    async def _through_cache(self, ctx: AttemptContext, call_next: Callable[[], Awaitable[Any]], plan: Plan) -> Any:
        key = plan[0]
        if ctx.cache != "refresh":
            raw = await self._fetch(key)
            if raw is not None:
                hit = self._restore(ctx, key, raw)
                if hit is not None:
                    return hit
            self.misses += 1
        response = await call_next()
        if isinstance(response, (LLMResponse, EmbeddingResponse)):
            await self._landed(self._put(key, response, plan[1]))
        return response

    def around_stream(self, ctx: AttemptContext,
                      open_stream: Callable[[], AsyncIterator[Any]]) -> AsyncIterator[Any]:
        """Replay a cached answer as a stream, or pass the stream through and store it once it completed.

        A bypassed stream is handed straight on: no generator step of ours per chunk.
        """
        plan = self._plan(ctx)
        if plan is None:
            return open_stream()
        return self._stream_through_cache(ctx, open_stream, plan)

    async def _stream_through_cache(self, ctx: AttemptContext, open_stream: Callable[[], AsyncIterator[Any]],
                                    plan: Plan) -> AsyncIterator[Any]:
        key = plan[0]
        if ctx.cache != "refresh":
            raw = await self._fetch(key)
            hit = self._restore(ctx, key, raw) if raw is not None else None
            if isinstance(hit, LLMResponse):
                for chunk in replay_chunks(hit):
                    yield chunk
                return
            self.misses += 1
        reasoning: list[str] = []
        answer: LLMResponse | None = None
        try:
            async for chunk in open_stream():
                if chunk.reasoning_delta:
                    reasoning.append(chunk.reasoning_delta)
                if chunk.kind == "final":
                    # Taken as it arrives, a copy: the caller (and a resumed stream's prefix) may change the
                    # chunk once it is yielded.
                    answer = _folded(chunk, "".join(reasoning) or None).model_copy(deep=True)
                yield chunk
        finally:
            # Only a stream whose final chunk arrived is stored (never a partial answer), also when the caller
            # closes it right after that chunk. Its price is known once the after hooks have run (ctx.cost).
            if answer is not None:
                cost = ctx.cost
                if cost is not None:
                    answer.cost = cost
                await self._landed(self._put(key, answer, plan[1]))

    def status(self) -> dict[str, Any]:
        """Hits, misses, stores, errors, money saved and the backend's own counters."""
        lookups = self.hits + self.misses
        try:
            backend = self.backend.stats()
        except Exception as exc:
            backend = {"backend": getattr(self.backend, "name", "?"), "error": type(exc).__name__}
        return {"hits": self.hits, "misses": self.misses, "hit_rate": self.hits / lookups if lookups else 0.0,
                "stores": self.stores, "errors": self.errors, "skipped": self.skipped,
                "saved_usd": round(self.saved_usd, 10), "namespace": self.namespace, **backend}

    async def aclose(self) -> None:
        """Let the stores still on their way land, then close the backend."""
        try:
            await self.flush()
        finally:
            await self.backend.aclose()


async def _answered(response: Any) -> Any:
    return response


def _plain_fields(model: type[Any]) -> tuple[str, ...] | None:
    """The fields ``model`` serialises, when its JSON is exactly its field values (else ``None``)."""
    decorators = model.__pydantic_decorators__
    if decorators.field_serializers or decorators.model_serializers or model.model_computed_fields:
        return None
    fields = model.model_fields
    if any(f.alias or f.serialization_alias for f in fields.values()):
        return None
    return tuple(name for name, f in fields.items() if not f.exclude)


#: What an answer is stored with, written out below; checked against the models so that a field added to
#: either model sends every answer through pydantic rather than leaving the field out of the cache.
_ANSWER_FIELDS = ("content", "provider", "model", "finish_reason", "native_finish_reason", "tool_calls", "usage",
                  "reasoning", "refusal", "metadata", "messages")
_PLAIN_ANSWERS = _orjson_dumps is not None and _plain_fields(TokenUsage) is not None and tuple(
    name for name in _plain_fields(LLMResponse) or () if name not in _PER_REQUEST) == _ANSWER_FIELDS


def _entry(response: LLMResponse | EmbeddingResponse, compact: bool = False) -> bytes:
    """What is stored for an answer: the JSON list ``[answer, kind, price, when stored]``.

    The answer is written without its per-request fields. Most answers (text, usage, metadata of plain JSON
    values) are written from their field values by ``orjson`` in one call, a fraction of what pydantic's
    serialiser costs them (this is most of what a cache miss costs); tool calls, conversations and values JSON
    does not know natively go through pydantic. ``compact`` (for a backend whose entries never leave this process)
    writes such an answer as the list of its field values, in the order of :data:`_ANSWER_FIELDS`, rather than
    an object. Either way the entry is bytes: nothing the caller holds is shared with it.
    """
    # Field values read from __dict__: attribute access on a pydantic model costs several dict lookups.
    values = response.__dict__
    cost = values["cost"]
    if cost is None:
        price = None
    else:
        cost = cost.__dict__
        price = None if cost["unpriced"] else cost["total_cost"]
    if response.__class__ is LLMResponse and _PLAIN_ANSWERS:
        usage = values["usage"]
        if not values["tool_calls"] and values["messages"] is None and (usage is None or type(usage) is TokenUsage):
            answer: Any
            if compact:
                answer = [values["content"], values["provider"], values["model"], values["finish_reason"],
                          values["native_finish_reason"], [], None if usage is None else usage.__dict__,
                          values["reasoning"], values["refusal"], values["metadata"], None]
            else:
                answer = {"content": values["content"], "provider": values["provider"], "model": values["model"],
                          "finish_reason": values["finish_reason"],
                          "native_finish_reason": values["native_finish_reason"], "tool_calls": [],
                          "usage": None if usage is None else usage.__dict__, "reasoning": values["reasoning"],
                          "refusal": values["refusal"], "metadata": values["metadata"], "messages": None}
            try:
                entry: bytes = _orjson_dumps((answer, "LLMResponse", price, time.time()), option=_STRICT)
                return entry
            except TypeError:  # orjson.JSONEncodeError: a value for pydantic to write
                pass
    data = response.__pydantic_serializer__.to_json(response, exclude=_PER_REQUEST)
    tail = _dumps_plain((type(response).__name__, price, time.time()))  # ["kind",price,stored]
    return b"".join((b"[", data, b",", tail[1:]))


def _folded(final: LLMResponseChunk, reasoning: str | None) -> LLMResponse:
    metadata = {k: v for k, v in final.metadata.items()
                if k not in ("attempts", "fallback_path", "deployment", "cost")}
    cost = final.metadata.get("cost")
    return LLMResponse(
        content=final.content, provider=final.provider, model=final.model, finish_reason=final.finish_reason,
        native_finish_reason=final.native_finish_reason, tool_calls=final.tool_calls, usage=final.usage,
        reasoning=reasoning, refusal=final.metadata.get("refusal"), metadata=metadata,
        cost=cost if isinstance(cost, CostInfo) else None,
    )


def replay_chunks(response: LLMResponse) -> list[LLMResponseChunk]:
    """A whole answer as the chunks of a stream: its reasoning, its text, then the final chunk."""
    chunks = []
    common = {"provider": response.provider, "model": response.model}
    if response.reasoning:
        chunks.append(LLMResponseChunk(kind="reasoning", reasoning_delta=response.reasoning, **common))
    if response.content:
        chunks.append(LLMResponseChunk(kind="text", delta=response.content, content=response.content, **common))
    metadata = dict(response.metadata)
    if response.refusal is not None:  # where a live stream's final chunk carries it
        metadata["refusal"] = response.refusal
    chunks.append(LLMResponseChunk(
        kind="final", content=response.content, finish_reason=response.finish_reason,
        native_finish_reason=response.native_finish_reason, tool_calls=response.tool_calls, usage=response.usage,
        metadata=metadata, **common,
    ))
    return chunks
