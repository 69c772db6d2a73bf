"""Building the cache middleware from the configuration (``[cache]`` and per-provider ``enable_caching``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .backends import CacheBackend, MemoryCache, RedisCache, SQLiteCache
from .middleware import CacheMiddleware, CachePolicy

if TYPE_CHECKING:
    from ..config.models import SpoonConfig

__all__ = ["build_cache"]


def build_cache(config: SpoonConfig, env: Mapping[str, str] | None = None) -> CacheMiddleware | None:
    """The configured cache, or ``None`` when neither ``[cache] enabled`` nor any section's ``enable_caching``."""
    settings = config.cache
    per_provider = {name: (section.enable_caching, section.cache_ttl)
                    for name, section in config.providers.items()
                    if section.enable_caching is not None or section.cache_ttl is not None}
    if not settings.enabled and not any(enabled for enabled, _ in per_provider.values()):
        return None
    env = os.environ if env is None else env
    backend: CacheBackend
    if settings.backend == "memory":
        backend = MemoryCache(settings.max_entries, settings.max_bytes)
    elif settings.backend == "sqlite":
        backend = SQLiteCache(env.get("SPOON_LLM_CACHE_PATH") or settings.path or None,
                              max_entries=settings.max_entries)
    else:
        from ..state import DEFAULT_REDIS_URL, REDIS_URL_ENV

        url = settings.url or env.get(REDIS_URL_ENV) or config.state.url or DEFAULT_REDIS_URL
        backend = RedisCache(url, prefix=config.state.key_prefix, timeout=config.state.timeout)
    policy = CachePolicy(settings.enabled, settings.ttl or None, per_provider)
    return CacheMiddleware(backend, policy=policy, namespace=settings.namespace, key_tags=settings.key_tags)
