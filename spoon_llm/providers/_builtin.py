"""The built-in providers, registered through the same hook that third-party plugins use.

Entries are lazy ``"module:Class"`` specs: a vendor module (and its SDK) is imported only when first used.
"""

from __future__ import annotations

from ..hookspecs import RegisterProvider, hookimpl

_OPENAI_LIKE = ["chat", "completion", "tools", "streaming", "vision", "embeddings", "json_mode",
                "structured_output"]

BUILTIN_PROVIDERS: dict[str, tuple[str, list[str]]] = {
    "openai_compatible": ("spoon_llm.providers.openai_compatible_provider:OpenAICompatibleProvider", _OPENAI_LIKE),
    "openai": ("spoon_llm.providers.openai:OpenAIProvider", [*_OPENAI_LIKE, "reasoning", "prompt_caching"]),
    "openrouter": ("spoon_llm.providers.openrouter:OpenRouterProvider",
                   ["chat", "completion", "tools", "streaming", "vision", "json_mode", "structured_output",
                    "reasoning"]),
    "deepseek": ("spoon_llm.providers.deepseek:DeepSeekProvider",
                 ["chat", "completion", "tools", "streaming", "json_mode", "reasoning", "prompt_caching"]),
    "vllm": ("spoon_llm.providers.vllm:VLLMProvider", _OPENAI_LIKE),
    "ollama": ("spoon_llm.providers.ollama:OllamaProvider", _OPENAI_LIKE),
    "azure": ("spoon_llm.providers.azure:AzureOpenAIProvider", [*_OPENAI_LIKE, "reasoning", "prompt_caching"]),
    "mistral": ("spoon_llm.providers.mistral:MistralProvider", [*_OPENAI_LIKE, "reasoning"]),
    "groq": ("spoon_llm.providers.groq:GroqProvider",
             ["chat", "completion", "tools", "streaming", "vision", "json_mode", "structured_output", "reasoning"]),
    "xai": ("spoon_llm.providers.xai:XAIProvider",
            ["chat", "completion", "tools", "streaming", "vision", "json_mode", "structured_output", "reasoning",
             "prompt_caching"]),
    "cerebras": ("spoon_llm.providers.cerebras:CerebrasProvider",
                 ["chat", "completion", "tools", "streaming", "json_mode", "structured_output", "reasoning"]),
    "together": ("spoon_llm.providers.presets:TogetherProvider", _OPENAI_LIKE),
    "fireworks": ("spoon_llm.providers.presets:FireworksProvider", _OPENAI_LIKE),
    "perplexity": ("spoon_llm.providers.presets:PerplexityProvider",
                   ["chat", "completion", "streaming", "json_mode", "structured_output", "reasoning"]),
    "lmstudio": ("spoon_llm.providers.presets:LMStudioProvider", _OPENAI_LIKE),
    "llamacpp": ("spoon_llm.providers.presets:LlamaCppProvider", _OPENAI_LIKE),
    "sglang": ("spoon_llm.providers.presets:SGLangProvider", _OPENAI_LIKE),
    "tgi": ("spoon_llm.providers.presets:TGIProvider", ["chat", "completion", "tools", "streaming", "json_mode"]),
    "anthropic": ("spoon_llm.providers.anthropic:AnthropicProvider",
                  ["chat", "completion", "tools", "streaming", "vision", "json_mode", "structured_output",
                   "reasoning", "prompt_caching", "token_counting"]),
    "bedrock": ("spoon_llm.providers.bedrock:BedrockProvider",
                ["chat", "completion", "tools", "streaming", "vision", "structured_output", "reasoning",
                 "prompt_caching", "token_counting"]),
    "openai_responses": ("spoon_llm.providers.openai_responses:OpenAIResponsesProvider",
                         ["chat", "completion", "tools", "streaming", "vision", "json_mode", "structured_output",
                          "reasoning", "prompt_caching"]),
    "gemini": ("spoon_llm.providers.gemini:GeminiProvider",
               ["chat", "completion", "tools", "streaming", "vision", "embeddings", "json_mode",
                "structured_output", "reasoning", "token_counting"]),
    "vertex": ("spoon_llm.providers.vertex:VertexProvider",
               ["chat", "completion", "tools", "streaming", "vision", "embeddings", "json_mode",
                "structured_output", "reasoning", "token_counting"]),
    "vertex_anthropic": ("spoon_llm.providers.vertex:VertexAnthropicProvider",
                         ["chat", "completion", "tools", "streaming", "vision", "json_mode", "structured_output",
                          "reasoning", "prompt_caching", "token_counting"]),
}


@hookimpl
def spoon_llm_register_providers(register: RegisterProvider) -> None:
    """Register every built-in provider lazily."""
    for name, (spec, capabilities) in BUILTIN_PROVIDERS.items():
        register(name, spec, capabilities)
