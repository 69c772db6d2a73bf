"""The older module path of the OpenAI provider (``from spoon_ai.llm.providers import openai_provider``).

Importing it makes ``OpenAIProvider`` available; the provider itself is registered under ``openai`` whether or not
this module is imported.
"""

from __future__ import annotations

from .openai import OpenAIProvider

__all__ = ["OpenAIProvider"]
