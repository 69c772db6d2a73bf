"""Pluggy hook specifications: how plugins (and the built-in providers) add providers to the registry.

A plugin is a module with hook implementations, exposed through an entry point in the ``spoon_llm`` group::

    # pyproject.toml of the plugin
    [project.entry-points.spoon_llm]
    echo = "spoon_llm_echo"

    # spoon_llm_echo.py
    from spoon_llm import hookimpl

    @hookimpl
    def spoon_llm_register_providers(register):
        register("echo", "spoon_llm_echo:EchoProvider", capabilities=["chat"])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from .interface import LLMProviderInterface, ProviderCapability

__all__ = ["PROJECT_NAME", "RegisterProvider", "SpoonLLMHookSpecs", "hookimpl", "hookspec"]

PROJECT_NAME = "spoon_llm"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class RegisterProvider(Protocol):
    """The callback a plugin receives: register a provider class, or a lazy ``"module:Class"`` spec."""

    def __call__(
        self,
        name: str,
        provider: type[LLMProviderInterface] | str,
        capabilities: Iterable[ProviderCapability | str] | None = None,
        *,
        replace: bool = False,
    ) -> None:
        """Register one provider."""


class SpoonLLMHookSpecs:
    """Hooks a spoon-llm plugin may implement."""

    @hookspec
    def spoon_llm_register_providers(self, register: RegisterProvider) -> None:
        """Register providers by calling ``register(name, provider_class_or_spec, capabilities)``.

        Prefer ``"module:Class"`` specs: the module is imported only when the provider is first used, so a plugin
        costs nothing at ``import spoon_llm`` time.
        """

    @hookspec
    def spoon_llm_register_observers(self, register: Any) -> None:
        """Subscribe request-lifecycle observers to every new ``LLMManager``: call ``register(observer)``.

        Called once per manager when it is built (never per request); an observer is an object with
        ``on_event(event)`` (optionally ``event_kinds``) or a callable taking the event.
        """
