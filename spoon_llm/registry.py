"""Provider registry: name -> provider class and capabilities.

Filled three ways, all lazily on first lookup: the ``@register_provider`` decorator, pluggy hook implementations,
and ``importlib.metadata`` entry points in the ``spoon_llm`` group (so a provider can ship as its own pip package).
The built-in providers register through the same hook as third-party plugins.

Plugin loading is controlled by two environment variables: ``SPOON_LLM_PLUGINS`` (comma-separated allow-list of
entry-point names; ``none`` loads no third-party plugin) and ``SPOON_LLM_BLOCK_PLUGINS`` (names never to load).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy

from .errors import ConfigurationError
from .hookspecs import PROJECT_NAME, SpoonLLMHookSpecs
from .interface import LLMProviderInterface, ProviderCapability

__all__ = [
    "ENTRY_POINT_GROUP",
    "LLMProviderRegistry",
    "PluginLoadWarning",
    "ProviderEntry",
    "get_global_registry",
    "register_provider",
    "reset_global_registry",
]

ENTRY_POINT_GROUP = "spoon_llm"
_P = TypeVar("_P", bound=type[LLMProviderInterface])


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded; other providers are unaffected."""


@dataclass
class ProviderEntry:
    """One registered provider: a class, or a ``"module:Class"`` spec imported on first use."""

    name: str
    spec: type[LLMProviderInterface] | str
    capabilities: tuple[ProviderCapability, ...]
    source: str = "decorator"
    _cls: type[LLMProviderInterface] | None = field(default=None, repr=False)

    @property
    def spec_path(self) -> str:
        """``module:Class`` for this entry, whether given as a class or a string."""
        if isinstance(self.spec, str):
            return self.spec
        return f"{self.spec.__module__}:{self.spec.__qualname__}"

    def load(self) -> type[LLMProviderInterface]:
        """The provider class, importing its module the first time."""
        if self._cls is not None:
            return self._cls
        if not isinstance(self.spec, str):
            self._cls = self.spec
            return self._cls
        module_name, _, attr = self.spec.partition(":")
        try:
            module = importlib.import_module(module_name)
            obj: Any = module
            for part in attr.split("."):
                obj = getattr(obj, part)
        except ImportError as exc:
            raise ConfigurationError(
                f"provider {self.name!r} cannot be loaded from {self.spec!r}: {exc}",
                key=f"providers.{self.name}",
            ) from exc
        except AttributeError as exc:
            raise ConfigurationError(
                f"provider {self.name!r}: {self.spec!r} names nothing importable ({exc})",
                key=f"providers.{self.name}",
            ) from exc
        if not (isinstance(obj, type) and issubclass(obj, LLMProviderInterface)):
            raise ConfigurationError(
                f"provider {self.name!r}: {self.spec!r} is not an LLMProviderInterface subclass",
                key=f"providers.{self.name}",
            )
        self._cls = obj
        return obj


def _capabilities(values: Iterable[ProviderCapability | str] | None) -> tuple[ProviderCapability, ...]:
    out = []
    for value in values or ():
        try:
            out.append(ProviderCapability(value))
        except ValueError:
            known = ", ".join(c.value for c in ProviderCapability)
            raise ValueError(f"unknown capability {value!r}; known: {known}") from None
    return tuple(out)


class LLMProviderRegistry:
    """Maps provider names to classes and builds configured instances.

    Each instance built is the caller's: it holds connections until the caller's ``await provider.cleanup()``
    (the manager builds and closes its own). Example::

        registry = LLMProviderRegistry()
        registry.register("echo", EchoProvider, ["chat"])
        provider = await registry.get_initialized_provider("echo", {"model": "x"})
        try:
            await provider.chat("hi")
        finally:
            await provider.cleanup()
    """

    def __init__(self, *, load_plugins: bool = True, env: Mapping[str, str] | None = None) -> None:
        self._entries: dict[str, ProviderEntry] = {}
        self._load_plugins = load_plugins
        self._env = env
        self._loaded = False
        self._loading = False
        self._lock = threading.RLock()
        self.plugin_errors: list[str] = []
        self.plugin_manager = pluggy.PluginManager(PROJECT_NAME)
        self.plugin_manager.add_hookspecs(SpoonLLMHookSpecs)

    # -- registration ---------------------------------------------------------------------------------------

    def register(
        self,
        name: str,
        provider: type[LLMProviderInterface] | str,
        capabilities: Iterable[ProviderCapability | str] | None = None,
        *,
        replace: bool = False,
        source: str = "decorator",
    ) -> None:
        """Register ``provider`` (a class or ``"module:Class"``) under ``name``.

        A taken name raises :class:`ConfigurationError` unless ``replace=True``. Registering the class that a lazy
        entry already points at (its own decorator running on import) just resolves that entry.
        """
        if not name or not isinstance(name, str):
            raise ValueError("a provider name must be a non-empty string")
        if not isinstance(provider, str) and not (
            isinstance(provider, type) and issubclass(provider, LLMProviderInterface)
        ):
            raise TypeError(f"provider {name!r} must be an LLMProviderInterface subclass or a 'module:Class' string")
        entry = ProviderEntry(name, provider, _capabilities(capabilities), source)
        with self._lock:
            existing = self._entries.get(name)
            if existing is not None and not replace:
                if existing.spec_path == entry.spec_path:
                    if not isinstance(provider, str):
                        existing._cls = provider
                    if entry.capabilities and not existing.capabilities:
                        existing.capabilities = entry.capabilities
                    return
                raise ConfigurationError(
                    f"provider name {name!r} is already registered by {existing.source} ({existing.spec_path}); "
                    "pass replace=True to replace it, or choose another name"
                )
            self._entries[name] = entry

    def unregister(self, name: str) -> None:
        """Remove ``name``; unknown names are ignored."""
        with self._lock:
            self._entries.pop(name, None)

    def clear(self) -> None:
        """Remove every provider; plugins are not reloaded."""
        with self._lock:
            self._entries.clear()
            self._loaded = True

    # -- discovery ------------------------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded or self._loading:
            return
        with self._lock:
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                self._discover()
            finally:
                self._loading = False
                self._loaded = True

    def _discover(self) -> None:
        from .providers import _builtin

        pm = self.plugin_manager
        pm.register(_builtin, name="spoon_llm.builtin")
        if self._load_plugins:
            self._load_entry_points()
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            # A misspelt hook name in a plugin must be loud, but must not take the built-ins down.
            message = f"a spoon-llm plugin implements an unknown hook: {exc}"
            self.plugin_errors.append(message)
            warnings.warn(message, PluginLoadWarning, stacklevel=4)
        for impl in pm.hook.spoon_llm_register_providers.get_hookimpls():
            source = "builtin" if impl.plugin_name == "spoon_llm.builtin" else f"plugin {impl.plugin_name}"
            try:
                impl.function(register=self._plugin_register(source))
            except Exception as exc:  # a broken plugin must never break the others
                message = f"spoon-llm plugin {impl.plugin_name!r} failed while registering providers: {exc!r}"
                self.plugin_errors.append(message)
                warnings.warn(message, PluginLoadWarning, stacklevel=4)

    def _plugin_register(self, source: str) -> Callable[..., None]:
        def register(
            name: str,
            provider: type[LLMProviderInterface] | str,
            capabilities: Iterable[ProviderCapability | str] | None = None,
            *,
            replace: bool = False,
        ) -> None:
            try:
                self.register(name, provider, capabilities, replace=replace, source=source)
            except (ConfigurationError, ValueError, TypeError) as exc:
                message = f"{source}: cannot register provider {name!r}: {exc}"
                self.plugin_errors.append(message)
                warnings.warn(message, PluginLoadWarning, stacklevel=3)

        return register

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        env = self._env if self._env is not None else os.environ
        allow_raw = env.get("SPOON_LLM_PLUGINS", "").strip()
        allow = None if not allow_raw else {p.strip() for p in allow_raw.split(",") if p.strip()}
        blocked = {p.strip() for p in env.get("SPOON_LLM_BLOCK_PLUGINS", "").split(",") if p.strip()}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if allow is not None and ep.name not in allow:
                continue
            if ep.name in blocked:
                self.plugin_manager.set_blocked(ep.name)
                continue
            if self.plugin_manager.get_plugin(ep.name) is not None:
                continue
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            try:
                plugin = ep.load()
                self.plugin_manager.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must never break the others
                message = (
                    f"spoon-llm plugin {ep.name!r} from distribution {dist!r} failed to load: "
                    f"{type(exc).__name__}: {exc}"
                )
                self.plugin_errors.append(message)
                warnings.warn(message, PluginLoadWarning, stacklevel=5)

    # -- lookup ---------------------------------------------------------------------------------------------

    def _entry(self, name: str) -> ProviderEntry:
        self._ensure_loaded()
        entry = self._entries.get(name)
        if entry is None:
            import difflib

            close = difflib.get_close_matches(name, list(self._entries), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"no provider named {name!r} is registered{hint} (registered: {', '.join(self.list_providers())})"
            )
        return entry

    def is_registered(self, name: str) -> bool:
        """True when ``name`` is registered."""
        self._ensure_loaded()
        return name in self._entries

    def list_providers(self) -> list[str]:
        """Names of all registered providers, sorted."""
        self._ensure_loaded()
        return sorted(self._entries)

    def entries(self) -> list[ProviderEntry]:
        """All registry entries (name, spec, capabilities, source), sorted by name."""
        self._ensure_loaded()
        return [self._entries[n] for n in sorted(self._entries)]

    def get_capabilities(self, name: str) -> list[ProviderCapability]:
        """Declared capabilities of ``name`` (without importing its module when it was registered lazily)."""
        entry = self._entry(name)
        if entry.capabilities:
            return list(entry.capabilities)
        return list(getattr(entry.load(), "capabilities", ()))

    def get_provider_class(self, name: str) -> type[LLMProviderInterface]:
        """The class registered under ``name``, importing it on first use."""
        return self._entry(name).load()

    def get_provider(self, name: str, config: Any = None) -> LLMProviderInterface:
        """A new provider instance for ``name``, not yet initialised: ``await provider.initialize(config)`` next.

        ``config`` is accepted for compatibility and not used here (:meth:`get_initialized_provider` passes it to
        ``initialize``). Use :meth:`get_initialized_provider` from async code to do both.
        """
        instance = self.get_provider_class(name)()
        if not getattr(instance, "provider_name", ""):
            instance.provider_name = name
        return instance

    async def get_initialized_provider(self, name: str, config: Any = None) -> LLMProviderInterface:
        """A new, initialised provider for ``name`` and ``config``; the caller closes it (``cleanup()``)."""
        instance = self.get_provider(name, config)
        try:
            await instance.initialize(config if config is not None else {})
        except BaseException:
            with contextlib.suppress(Exception):  # the initialisation's own error is the one to report
                await instance.cleanup()  # whatever initialize opened before it failed
            raise
        return instance

    def __repr__(self) -> str:
        return f"LLMProviderRegistry(providers={sorted(self._entries)!r}, loaded={self._loaded})"


_global_registry: LLMProviderRegistry | None = None
_global_lock = threading.Lock()


def get_global_registry() -> LLMProviderRegistry:
    """The process-wide registry that ``@register_provider`` fills (created on first use)."""
    global _global_registry
    if _global_registry is None:
        with _global_lock:
            if _global_registry is None:
                _global_registry = LLMProviderRegistry()
    return _global_registry


def reset_global_registry(registry: LLMProviderRegistry | None = None) -> None:
    """Replace the global registry (a fresh one when ``None``); for tests and embedding applications."""
    global _global_registry
    with _global_lock:
        _global_registry = registry


def register_provider(
    name: str,
    capabilities: Iterable[ProviderCapability | str] | None = None,
    *,
    replace: bool = False,
    registry: LLMProviderRegistry | None = None,
) -> Callable[[_P], _P]:
    """Class decorator: register a provider under ``name`` in the global (or given) registry.

    Example::

        @register_provider("echo", capabilities=[ProviderCapability.CHAT])
        class EchoProvider(LLMProviderInterface): ...
    """
    caps = _capabilities(capabilities)

    def decorate(cls: _P) -> _P:
        cls.provider_name = name
        if caps:
            cls.capabilities = caps
        (registry or get_global_registry()).register(name, cls, caps, replace=replace)
        return cls

    return decorate
