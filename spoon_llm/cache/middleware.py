"""The response cache as middleware: answers an attempt from the cache, or stores what the provider answered.

It wraps whole attempts (``around_attempt`` / ``around_stream``), so a hit reserves no budget, takes no rate-limit
slot, reaches no provider and costs nothing; a miss runs the attempt as usual and stores the priced answer.
Errors and partial streams are never stored; a failing backend turns into a miss (counted in ``errors``).

A hit comes back with ``cost`` zero, ``usage`` zero and ``metadata["cache"]`` holding ``hit``, the key, when it
was stored, and the original usage and cost (the money the hit saved). A cached answer replays as a stream (its
reasoning, text, tool calls and final usage), and a streamed answer, once complete, serves whole requests too.

Per call, ``cache=False`` bypasses the cache, ``cache="refresh"`` skips the lookup but stores the new answer,
and a number stores it for that many seconds; ``cache_namespace="..."`` keeps entries apart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..middleware.base import AttemptContext, Middleware
from ..types import CostInfo, EmbeddingResponse, LLMResponse, LLMResponseChunk, TokenUsage
from ._key import CACHEABLE, _dumps, cache_key, tag_namespace

if TYPE_CHECKING:
    from .backends import CacheBackend

__all__ = ["CacheMiddleware", "CachePolicy"]

logger = logging.getLogger("spoon_llm.cache")

#: Fields of a response that belong to one request, not to the answer.
_PER_REQUEST = {"attempts", "fallback_path", "deployment", "cost", "request_id", "duration", "timestamp"}
_TYPES: dict[str, type[LLMResponse] | type[EmbeddingResponse]] = {
    "LLMResponse": LLMResponse, "EmbeddingResponse": EmbeddingResponse}

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - core-only install
    import json

    _loads = json.loads


class CachePolicy:
    """Which provider sections are cached and for how long (``[cache]`` and per-provider ``enable_caching``).

    A TTL of ``None`` means "until evicted"; a section's ``cache_ttl`` of ``0`` means the same.
    """

    __slots__ = ("default_enabled", "default_ttl", "per_provider")

    def __init__(self, default_enabled: bool = True, default_ttl: float | None = 3600.0,
                 per_provider: Mapping[str, tuple[bool | None, float | None]] | None = None) -> None:
        self.default_enabled = default_enabled
        self.default_ttl = default_ttl
        self.per_provider = dict(per_provider or {})

    def for_provider(self, provider: str) -> tuple[bool, float | None]:
        """``(enabled, ttl)`` for a provider section."""
        enabled, ttl = self.per_provider.get(provider, (None, None))
        return (self.default_enabled if enabled is None else enabled,
                self.default_ttl if ttl is None else (ttl or None))


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

    # -- keys and policy -------------------------------------------------------------------------------------

    def _plan(self, ctx: AttemptContext) -> tuple[str, float | None, bool] | None:
        """``(key, ttl, lookup)`` for a cacheable attempt, ``None`` when it bypasses the cache."""
        directive = ctx.cache
        if directive is False or ctx.operation not in CACHEABLE:
            return None
        enabled, ttl = self.policy.for_provider(ctx.deployment.provider_name)
        if not enabled and directive is None:
            return None
        if isinstance(directive, (int, float)) and not isinstance(directive, bool):
            ttl = float(directive)
        namespace = ctx.cache_namespace or tag_namespace(self.namespace, ctx.tags, self.key_tags)
        try:
            key = cache_key(ctx, namespace)
        except Exception as exc:  # an argument we cannot canonicalise: serve it uncached
            self.skipped += 1
            logger.debug("request not cacheable: %s", type(exc).__name__)
            return None
        return key, ttl, directive != "refresh"

    # -- storage -------------------------------------------------------------------------------------------

    async def _lookup(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self.backend.get(key)
            return None if raw is None else dict(_loads(raw))
        except Exception as exc:
            self.errors += 1
            logger.warning("response cache lookup failed (%s): serving from the provider", type(exc).__name__)
            return None

    async def _store(self, key: str, response: LLMResponse | EmbeddingResponse, ttl: float | None) -> None:
        cost = response.cost
        price = None if cost is None or cost.unpriced else cost.total_cost
        # The response serialises itself straight to JSON bytes (one pass in pydantic-core, no intermediate dict):
        # this is most of what a miss costs.
        data = response.__pydantic_serializer__.to_json(response, exclude=_PER_REQUEST)
        head = _dumps({"type": type(response).__name__, "cost": price, "stored": time.time()})
        entry = b"".join((head[:-1], b',"data":', data, b"}"))
        try:
            await self.backend.set(key, entry, ttl)
        except Exception as exc:
            self.errors += 1
            logger.warning("response cache store failed (%s): answer served uncached", type(exc).__name__)
            return
        self.stores += 1

    def _restore(self, key: str, entry: dict[str, Any]) -> LLMResponse | EmbeddingResponse | None:
        kind = _TYPES.get(str(entry.get("type")))
        if kind is None:
            return None
        try:
            response = kind.model_validate(entry["data"])
        except Exception:
            self.errors += 1
            return None
        cost = entry.get("cost")
        response.metadata["cache"] = {"hit": True, "key": key, "stored": entry.get("stored"),
                                      "usage": entry["data"].get("usage"), "cost": cost}
        response.usage = TokenUsage()
        response.cost = CostInfo(source="cache")
        self.hits += 1
        if cost:
            self.saved_usd += float(cost)
        return response

    # -- the hooks -----------------------------------------------------------------------------------------

    async def around_attempt(self, ctx: AttemptContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Answer from the cache, or run the attempt and store its answer."""
        plan = self._plan(ctx)
        if plan is None:
            return await call_next()
        key, ttl, lookup = plan
        if lookup:
            entry = await self._lookup(key)
            if entry is not None:
                hit = self._restore(key, entry)
                if hit is not None and (ctx.operation == "embed") == isinstance(hit, EmbeddingResponse):
                    return hit
            self.misses += 1
        response = await call_next()
        if isinstance(response, (LLMResponse, EmbeddingResponse)):
            await self._store(key, response, ttl)
        return response

    async def around_stream(self, ctx: AttemptContext,
                            open_stream: Callable[[], AsyncIterator[Any]]) -> AsyncIterator[Any]:
        """Replay a cached answer as a stream, or pass the stream through and store it once it completed."""
        plan = self._plan(ctx)
        if plan is None:
            async for chunk in open_stream():
                yield chunk
            return
        key, ttl, lookup = plan
        if lookup:
            entry = await self._lookup(key)
            hit = self._restore(key, entry) if entry is not None else None
            if isinstance(hit, LLMResponse):
                for chunk in replay_chunks(hit):
                    yield chunk
                return
            self.misses += 1
        reasoning: list[str] = []
        final: LLMResponseChunk | None = None
        async for chunk in open_stream():
            if chunk.reasoning_delta:
                reasoning.append(chunk.reasoning_delta)
            if chunk.kind == "final":
                final = chunk
            yield chunk
        # Reached only when the stream completed: an error or an early close never stores a partial answer.
        if final is not None:
            await self._store(key, _folded(final, "".join(reasoning) or None), ttl)

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
        """Close the backend."""
        await self.backend.aclose()


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
    chunks.append(LLMResponseChunk(
        kind="final", content=response.content, finish_reason=response.finish_reason,
        native_finish_reason=response.native_finish_reason, tool_calls=response.tool_calls, usage=response.usage,
        metadata=dict(response.metadata), **common,
    ))
    return chunks
