"""The public module path of :class:`OpenAICompatibleProvider` (its code lives in :mod:`.openai._provider`).

``from spoon_llm.providers.openai_compatible_provider import OpenAICompatibleProvider`` is how the README and
older code subclass it, and the registry names it this way.
"""

from __future__ import annotations

from ._builtin import builtin_capabilities
from .openai._provider import OpenAICompatibleProvider

__all__ = ["OpenAICompatibleProvider", "builtin_capabilities"]
