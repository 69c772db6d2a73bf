"""Checks of a whole configuration that need no network: what ``spoon-llm config validate`` reports.

Two sets:

* :func:`reference_problems` runs when a :class:`~spoon_llm.config.manager.ConfigurationManager` is built: URL
  schemes, and names that ``fallback_chain`` and the routes' ``fallback`` / ``context_fallback`` refer to;
* :func:`problems` adds what depends on the registered providers and the environment: unknown provider types,
  providers that need a key and have none, ``${VAR}`` references to unset variables, an empty configuration.

Each problem is a :class:`~spoon_llm.errors.ConfigurationError` naming the source (file, dict or environment
variable), the dotted key and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .manager import ConfigurationManager
    from .models import SpoonConfig
    from .sources import Layer

__all__ = ["did_you_mean", "problems", "reference_problems"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (empty when none is close)."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def reference_problems(config: SpoonConfig, origin: Any) -> list[ConfigurationError]:
    """URL schemes and the names fallbacks refer to; ``origin(path)`` names the source that set ``path``."""
    out: list[ConfigurationError] = []
    for name, section in config.providers.items():
        url = section.base_url
        if url:
            scheme = urlsplit(url).scheme.lower()
            if scheme not in ("http", "https"):
                fixed = url if "://" in url else f"http://{url}"
                out.append(ConfigurationError(
                    f"base_url {url!r} is not an http:// or https:// URL (fix: base_url = {fixed!r})",
                    source=origin(("providers", name, "base_url")), key=f"providers.{name}.base_url"))
    if not config.providers:
        return out
    known = sorted(set(config.providers) | set(config.models))
    for index, name in enumerate(config.fallback_chain):
        if name not in known:
            out.append(ConfigurationError(
                f"fallback_chain names {name!r}, which is neither a provider section nor a [models] alias"
                f"{did_you_mean(name, known)} (fix: add [providers.{name}] or remove it from the chain)",
                source=origin(("fallback_chain",)), key=f"fallback_chain[{index}]"))
    for alias, route in config.models.items():
        for field, names in (("fallback", route.fallback),
                             ("context_fallback", [route.context_fallback] if route.context_fallback else [])):
            for name in names:
                if name not in known:
                    out.append(ConfigurationError(
                        f"{field} names {name!r}, which is neither a provider section nor a [models] alias"
                        f"{did_you_mean(name, known)} (fix: define it or correct the name)",
                        source=origin(("models", alias, field)), key=f"models.{alias}.{field}"))
    return out


def problems(manager: ConfigurationManager, registry: Any = None) -> list[ConfigurationError]:
    """Every problem :func:`reference_problems` finds, plus those that need the registry and the environment."""
    config = manager.config
    origin = manager._origin
    out = reference_problems(config, origin)
    layers: list[Layer] = manager._layers
    for layer in layers:
        for path, variable in layer.unresolved:
            key = ".".join(path)
            out.append(ConfigurationError(
                f"${{{variable}}} names an environment variable that is not set, so {key} is unset (fix: export "
                f"{variable}, or write ${{{variable}:-default}})", source=layer.name, key=key))
    if not config.providers:
        out.append(ConfigurationError(
            "no provider is configured (fix: add a [providers.<name>] section, or set a provider's key such as "
            "OPENAI_API_KEY in the environment)", source=manager.source_name or "environment"))
        return out
    if registry is None:
        from ..registry import get_global_registry

        registry = get_global_registry()
    registered = sorted(registry.list_providers())
    for name, section in config.providers.items():
        if not section.enabled:
            continue
        kind = section.provider_type
        if kind not in registered:
            key = "type" if section.type else ""
            out.append(ConfigurationError(
                f"provider type {kind!r} is not registered{did_you_mean(kind, registered)} (fix: set type to "
                f"one of {', '.join(registered)}, or install the plugin that provides it)",
                source=origin(("providers", name, *((key,) if key else ()))),
                key=f"providers.{name}" + (f".{key}" if key else "")))
            continue
        try:
            cls = registry.get_provider_class(kind)
        except Exception:  # noqa: BLE001 - a provider that cannot be imported is reported when it is used
            continue
        if getattr(cls, "requires_api_key", False) and all(d.api_key is None for d in section.deployments()):
            env = getattr(cls, "api_key_env", None) or f"{name.upper().replace('-', '_')}_API_KEY"
            out.append(ConfigurationError(
                f"provider {name!r} needs an API key and has none (fix: set {env}, or api_key = "
                f"\"${{{env}}}\" in [providers.{name}])",
                source=origin(("providers", name)), key=f"providers.{name}.api_key"))
    return out
