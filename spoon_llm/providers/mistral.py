"""The ``mistral`` provider: Mistral AI's OpenAI-compatible chat and embeddings API (``MISTRAL_API_KEY``).

Mistral's deviations are handled by the shared mapping: Magistral's reasoning arrives as ``{"type": "thinking"}``
content parts (also inside stream deltas) and comes back as ``LLMResponse.reasoning`` / reasoning deltas; streamed
tool calls arrive complete and without ``index`` (their position in the delta is used); tool dicts without
``"type": "function"`` (as Mistral's own clients write them) are accepted. Usage always closes a stream, so no
``stream_options`` is sent. Embeddings use ``mistral-embed`` unless the call or ``options.embedding_model`` names
another.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .openai._provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = ["MistralProvider"]


class MistralProvider(OpenAICompatibleProvider):
    """Mistral AI (mistral-*, magistral-*, codestral, pixtral, mistral-embed)."""

    provider_name = "mistral"
    capabilities = builtin_capabilities("mistral")
    default_base_url: ClassVar[str | None] = "https://api.mistral.ai/v1"
    default_model: ClassVar[str | None] = "mistral-small-latest"
    requires_api_key: ClassVar[bool] = True
    api_key_env: ClassVar[str | None] = "MISTRAL_API_KEY"
    default_embedding_model: ClassVar[str | None] = "mistral-embed"
    # Mistral takes max_tokens for every model and reports usage on the last chunk without being asked.
    completion_tokens_for_reasoning: ClassVar[bool] = False
    stream_usage: ClassVar[bool] = False
    known_models: ClassVar[tuple[str, ...]] = (
        "mistral-small-latest", "mistral-medium-latest", "mistral-large-latest", "magistral-medium-latest",
        "magistral-small-latest", "codestral-latest", "pixtral-large-latest", "ministral-8b-latest", "mistral-embed",
    )

    async def _chat_request(self, messages: Any, kwargs: dict[str, Any], *, stream: bool
                            ) -> tuple[str, dict[str, Any], Any, Any]:
        choice = kwargs.get("tool_choice")
        model, body, headers, timeout = await super()._chat_request(messages, kwargs, stream=stream)
        if choice == "any":
            body["tool_choice"] = "any"  # Mistral's own spelling of "required" (it accepts both), sent as given
        return model, body, headers, timeout
