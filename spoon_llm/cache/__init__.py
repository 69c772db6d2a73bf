"""A response cache for the manager (and the gateway): exact-match keys, memory / SQLite / Redis backends.

Enable it in the configuration::

    [cache]
    enabled = true
    backend = "sqlite"      # "memory" (default), "sqlite" (kept across restarts) or "redis" (shared)
    ttl = 3600

or build it yourself: ``LLMManager(middleware=[CacheMiddleware(MemoryCache()), *build_middleware(config)])``.
See :mod:`spoon_llm.cache.middleware` for what a hit returns and the per-call ``cache=`` settings.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._key import cache_key, canonical_request
    from .backends import CacheBackend, MemoryCache, RedisCache, SQLiteCache
    from .build import build_cache
    from .middleware import CacheMiddleware, CachePolicy, replay_chunks

__all__ = [
    "CacheBackend",
    "CacheMiddleware",
    "CachePolicy",
    "MemoryCache",
    "RedisCache",
    "SQLiteCache",
    "build_cache",
    "cache_key",
    "canonical_request",
    "replay_chunks",
]

_LAZY = {
    "cache_key": "._key",
    "canonical_request": "._key",
    "CacheBackend": ".backends",
    "MemoryCache": ".backends",
    "RedisCache": ".backends",
    "SQLiteCache": ".backends",
    "build_cache": ".build",
    "CacheMiddleware": ".middleware",
    "CachePolicy": ".middleware",
    "replay_chunks": ".middleware",
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
