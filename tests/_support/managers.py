"""Managers pointed at the provider simulator, closed after the test: the one factory behind each folder's
``make_manager`` fixture."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spoon_llm import ConfigurationManager
from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator

__all__ = ["ManagerFactory", "simulator_sections"]


def simulator_sections(sim: ProviderSimulator, providers: Mapping[str, Mapping[str, Any]],
                       keys: Mapping[str, str], *, default_key: str = "primary",
                       **defaults: Any) -> dict[str, dict[str, Any]]:
    """Provider sections served by ``sim``: OpenAI-type unless given, each with the key named after it.

    ``defaults`` fill keys a section leaves out (e.g. ``transport``); a section with ``api_keys`` gets no
    ``api_key``.
    """
    sections = {}
    for name, given in providers.items():
        section = {"type": "openai", "base_url": sim.openai_base_url, **defaults, **given}
        if "api_keys" not in section:
            section.setdefault("api_key", keys.get(name, keys[default_key]))
        sections[name] = section
    return sections


class ManagerFactory:
    """Builds managers from configuration data and closes every one it built (:meth:`aclose`, at teardown).

    Closing runs before the simulator stops; a test that already closed its manager makes it a no-op.
    """

    def __init__(self) -> None:
        self.managers: list[LLMManager] = []

    def build(self, data: Mapping[str, Any], **kwargs: Any) -> LLMManager:
        manager = LLMManager(ConfigurationManager(dict(data), env={}), **kwargs)
        self.managers.append(manager)
        return manager

    async def aclose(self) -> None:
        managers, self.managers = self.managers, []
        for manager in managers:
            await manager.cleanup()
