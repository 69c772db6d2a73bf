"""``LLMFactory``: the older way to build a provider object, kept working for existing code.

It warns once (``DeprecationWarning``) and points to :class:`spoon_llm.manager.LLMManager`.
"""

from __future__ import annotations

import warnings
from typing import Any

from .base import LLMBase
from .config.manager import ConfigurationManager
from .errors import ConfigurationError

__all__ = ["LLMFactory"]

_warned = False

MIGRATION = (
    "LLMFactory is deprecated: use spoon_llm.manager.LLMManager (await manager.chat(messages, provider=...)) "
    "or manager.sync.chat(...) from synchronous code"
)


def _warn_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(MIGRATION, DeprecationWarning, stacklevel=3)


class LLMFactory:
    """Builds an :class:`LLMBase` for one provider, from explicit settings or from the configuration.

    Example::

        llm = LLMFactory.create("openai", api_key="sk-...", model="gpt-4.1-mini")
        print(llm.chat("Hello"))
    """

    @staticmethod
    def create(
        provider: str | None = None,
        *,
        config: ConfigurationManager | str | None = None,
        fallback: bool = False,
        **settings: Any,
    ) -> LLMBase:
        """An :class:`LLMBase` for ``provider`` (default: the configured default provider).

        ``settings`` (``api_key``, ``model``, ``base_url``, ``max_tokens``, ...) override the configuration for this
        provider. Fallback to other providers is off unless ``fallback=True``, as in the older API.
        """
        from .manager import LLMManager

        _warn_once()
        if isinstance(config, ConfigurationManager):
            if settings:  # a built configuration cannot take them: say so rather than drop them
                raise ConfigurationError(
                    f"LLMFactory.create(config=<ConfigurationManager>) cannot apply {', '.join(sorted(settings))}; "
                    "pass the file path as config=, or set them in the configuration")
            manager_config = config
        else:
            path = config if isinstance(config, str) else None
            if settings and provider is None:  # the default provider is the one they are for
                provider = ConfigurationManager(path).get_default_provider()
            overrides = {"providers": {provider: settings}} if provider and settings else None
            manager_config = ConfigurationManager(path, overrides=overrides)
        name = provider or manager_config.get_default_provider()
        manager = LLMManager(manager_config)
        base = LLMBase(manager, name)
        if not fallback:
            manager.set_fallback_chain([])
        return base
