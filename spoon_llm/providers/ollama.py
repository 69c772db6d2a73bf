"""The ``ollama`` provider: a local Ollama server through its OpenAI-compatible ``/v1`` endpoint.

No key is needed (none is sent); the endpoint defaults to ``http://localhost:11434/v1`` (``OLLAMA_BASE_URL`` or
``base_url`` to change it). Set ``options.legacy_completions = true`` to send ``completion`` to ``/v1/completions``.
"""

from __future__ import annotations

from typing import ClassVar

from .openai._provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = ["OllamaProvider"]


class OllamaProvider(OpenAICompatibleProvider):
    """Ollama."""

    provider_name = "ollama"
    capabilities = builtin_capabilities("ollama")
    default_base_url: ClassVar[str | None] = "http://localhost:11434/v1"
    default_model: ClassVar[str | None] = "llama3.2"
    requires_api_key: ClassVar[bool] = False
    known_models: ClassVar[tuple[str, ...]] = ("llama3.2", "llama3.1", "qwen2.5", "mistral", "nomic-embed-text")
