"""State stores behind one small interface: in memory (default), SQLite (persistent), Redis (shared).

Rate limits, cool-downs, budget spend and the usage ledger all live in a :class:`StateStore`; pick one with
:func:`open_store` or from the ``[state]`` configuration section. Stores are imported lazily: neither ``sqlite3``
work nor ``redis`` happens at ``import spoon_llm``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import (
    NANO,
    StateStore,
    StateStoreError,
    StoreUnavailableError,
    SyncStateStore,
    from_nano,
    sync_store,
    to_nano,
)
from .memory import MemoryStore

if TYPE_CHECKING:
    from ..config.models import StateConfig

__all__ = [
    "NANO",
    "MemoryStore",
    "StateStore",
    "StateStoreError",
    "StoreUnavailableError",
    "SyncStateStore",
    "default_state_path",
    "from_nano",
    "open_store",
    "sync_store",
    "to_nano",
]

REDIS_URL_ENV = "SPOON_LLM_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def default_state_path(env: Mapping[str, str] | None = None) -> Any:
    """Where the SQLite store lives unless configured (see :func:`spoon_llm.state.sqlite.default_state_path`)."""
    from .sqlite import default_state_path as path

    return path(env)


def open_store(kind: str = "memory", *, config: StateConfig | None = None,
               env: Mapping[str, str] | None = None, **options: Any) -> StateStore:
    """Build a store: ``memory``, ``sqlite`` (``path=``) or ``redis`` (``url=``).

    Settings come from ``options``, then the environment (``SPOON_LLM_STATE_PATH``, ``SPOON_LLM_REDIS_URL``), then
    ``config`` (a ``[state]`` section: ``fail_mode`` too, and the Redis pool), then defaults.
    """
    env = os.environ if env is None else env
    if kind == "memory":
        return MemoryStore(**options)
    if kind == "sqlite":
        from .sqlite import STATE_PATH_ENV, SQLiteStore
        from .sqlite import default_state_path as sqlite_default

        path = options.pop("path", None) or env.get(STATE_PATH_ENV) or (config.path if config else None)
        store: StateStore = SQLiteStore(path or sqlite_default(env), **options)
        if config is not None:
            store.fail_mode = config.fail_mode
        return store
    if kind == "redis":
        from .redis import RedisStore

        url = options.pop("url", None) or env.get(REDIS_URL_ENV) or (config.url if config else None)
        if config is not None:
            options.setdefault("prefix", config.key_prefix)
            options.setdefault("timeout", config.timeout)
            options.setdefault("fail_mode", config.fail_mode)
            options.setdefault("max_connections", config.redis_max_connections)
            options.setdefault("pool_timeout", config.redis_pool_timeout)
        return RedisStore(url or DEFAULT_REDIS_URL, **options)
    raise ValueError(f"unknown state backend {kind!r}; expected memory, sqlite or redis")
