"""OpenAI-compatible presets that differ from OpenAI only in base URL, key and defaults.

==============  ==========================================  =====================  ============================
provider        default base URL                            key (env)              notes
==============  ==========================================  =====================  ============================
``together``    ``https://api.together.xyz/v1``             ``TOGETHER_API_KEY``   chat, tools, embeddings
``fireworks``   ``https://api.fireworks.ai/inference/v1``   ``FIREWORKS_API_KEY``  chat, tools, embeddings
``perplexity``  ``https://api.perplexity.ai``               ``PERPLEXITY_API_KEY`` Sonar; ``citations`` kept
``lmstudio``    ``http://localhost:1234/v1``                optional               local; model discovered
``llamacpp``    ``http://localhost:8080/v1``                optional               llama.cpp ``llama-server``
``sglang``      ``http://localhost:30000/v1``               optional               local; model discovered
``tgi``         ``http://localhost:8080/v1``                optional (HF token)    Text Generation Inference
==============  ==========================================  =====================  ============================

The local servers need no key (give ``api_key`` when the server was started with one) and, with no model
configured, use the first model the server lists. Everything else is :class:`OpenAICompatibleProvider`.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import ResponseParsingError
from .openai._provider import OpenAICompatibleProvider, builtin_capabilities

__all__ = [
    "FireworksProvider",
    "LMStudioProvider",
    "LlamaCppProvider",
    "PerplexityProvider",
    "SGLangProvider",
    "TGIProvider",
    "TogetherProvider",
]


class TogetherProvider(OpenAICompatibleProvider):
    """Together AI."""

    provider_name = "together"
    capabilities = builtin_capabilities("together")
    default_base_url: ClassVar[str | None] = "https://api.together.xyz/v1"
    default_model: ClassVar[str | None] = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    requires_api_key: ClassVar[bool] = True
    api_key_env: ClassVar[str | None] = "TOGETHER_API_KEY"
    completion_tokens_for_reasoning: ClassVar[bool] = False
    default_embedding_model: ClassVar[str | None] = "BAAI/bge-base-en-v1.5"
    known_models: ClassVar[tuple[str, ...]] = (
        "meta-llama/Llama-3.3-70B-Instruct-Turbo", "deepseek-ai/DeepSeek-V3", "Qwen/Qwen2.5-72B-Instruct-Turbo",
        "BAAI/bge-base-en-v1.5",
    )


class FireworksProvider(OpenAICompatibleProvider):
    """Fireworks AI."""

    provider_name = "fireworks"
    capabilities = builtin_capabilities("fireworks")
    default_base_url: ClassVar[str | None] = "https://api.fireworks.ai/inference/v1"
    default_model: ClassVar[str | None] = "accounts/fireworks/models/llama-v3p3-70b-instruct"
    requires_api_key: ClassVar[bool] = True
    api_key_env: ClassVar[str | None] = "FIREWORKS_API_KEY"
    completion_tokens_for_reasoning: ClassVar[bool] = False
    default_embedding_model: ClassVar[str | None] = "nomic-ai/nomic-embed-text-v1.5"
    known_models: ClassVar[tuple[str, ...]] = (
        "accounts/fireworks/models/llama-v3p3-70b-instruct", "accounts/fireworks/models/deepseek-v3",
        "accounts/fireworks/models/qwen3-235b-a22b",
    )


class PerplexityProvider(OpenAICompatibleProvider):
    """Perplexity (Sonar models; answers carry ``citations`` in metadata)."""

    provider_name = "perplexity"
    capabilities = builtin_capabilities("perplexity")
    default_base_url: ClassVar[str | None] = "https://api.perplexity.ai"
    default_model: ClassVar[str | None] = "sonar"
    requires_api_key: ClassVar[bool] = True
    api_key_env: ClassVar[str | None] = "PERPLEXITY_API_KEY"
    completion_tokens_for_reasoning: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = False
    known_models: ClassVar[tuple[str, ...]] = ("sonar", "sonar-pro", "sonar-reasoning", "sonar-reasoning-pro",
                                               "sonar-deep-research")


class _LocalServer(OpenAICompatibleProvider):
    """A self-hosted OpenAI-compatible server: no key needed, the model discovered when none is configured."""

    requires_api_key: ClassVar[bool] = False
    completion_tokens_for_reasoning: ClassVar[bool] = False

    async def _discover_model(self) -> str:
        """The first model the server lists."""
        assert self._transport is not None
        data = self._decode(await self._transport.get("models", None, None), "")
        models = data.get("data") if isinstance(data, dict) else None
        if not models or not isinstance(models[0], dict) or not models[0].get("id"):
            raise ResponseParsingError(
                f"the server lists no model; set model in [providers.{self.config.name or self.provider_name}]",
                provider=self._label,
            )
        return str(models[0]["id"])


class LMStudioProvider(_LocalServer):
    """LM Studio's local server."""

    provider_name = "lmstudio"
    capabilities = builtin_capabilities("lmstudio")
    default_base_url: ClassVar[str | None] = "http://localhost:1234/v1"
    api_key_env: ClassVar[str | None] = "LMSTUDIO_API_KEY"


class LlamaCppProvider(_LocalServer):
    """llama.cpp's ``llama-server``."""

    provider_name = "llamacpp"
    capabilities = builtin_capabilities("llamacpp")
    default_base_url: ClassVar[str | None] = "http://localhost:8080/v1"
    api_key_env: ClassVar[str | None] = "LLAMACPP_API_KEY"


class SGLangProvider(_LocalServer):
    """An SGLang server."""

    provider_name = "sglang"
    capabilities = builtin_capabilities("sglang")
    default_base_url: ClassVar[str | None] = "http://localhost:30000/v1"
    api_key_env: ClassVar[str | None] = "SGLANG_API_KEY"


class TGIProvider(_LocalServer):
    """Hugging Face Text Generation Inference (its Messages API)."""

    provider_name = "tgi"
    capabilities = builtin_capabilities("tgi")
    default_base_url: ClassVar[str | None] = "http://localhost:8080/v1"
    api_key_env: ClassVar[str | None] = "TGI_API_KEY"
    supports_embeddings: ClassVar[bool] = False
