"""URL routing: which vendor and which endpoint a request path belongs to.

Paths, as the official SDKs send them:

* OpenAI (and vLLM): ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``,
  ``/v1/models[/{id}]``; vLLM's ``/health``.
* OpenRouter: the same under ``/api/v1``. DeepSeek: the same without ``/v1`` or under ``/beta``.
* Anthropic: ``/v1/messages``, ``/v1/messages/count_tokens``, ``/v1/models`` (told apart from
  OpenAI's by the ``anthropic-version`` header).
* OpenAI Responses API: ``/v1/responses`` and Azure's ``/openai/v1/responses`` (:mod:`._responses`).
* Vertex AI: ``/v1[beta1]/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}`` and the
  project-less express paths (:mod:`._vertex`).
* Gemini: ``/v1beta/models/{model}:{method}``, ``/v1beta/models[/{model}]``, and the same under
  ``/v1`` (google-genai 3.x defaults to ``v1``; its ``GET /v1/models`` is told apart from
  OpenAI's by the ``x-goog-api-key`` / ``x-goog-api-client`` header or a ``key`` parameter).
"""

from __future__ import annotations

from typing import NamedTuple

# Endpoint kinds, shared by every vendor (what faults and replays are scoped by).
CHAT = "chat"
COMPLETION = "completion"
EMBEDDINGS = "embeddings"
COUNT_TOKENS = "count_tokens"
MODELS = "models"
MODEL = "model"
HEALTH = "health"
ENDPOINTS = (CHAT, COMPLETION, EMBEDDINGS, COUNT_TOKENS, MODELS, MODEL, HEALTH)

OPENAI_FAMILY = frozenset({"openai", "openrouter", "deepseek", "openai_responses", "azure", "mistral", "groq",
                           "xai", "cerebras", "together", "fireworks", "perplexity", "lmstudio", "llamacpp",
                           "sglang", "tgi"})


class Route(NamedTuple):
    """Where a request goes: vendor, endpoint kind, vendor operation and model named in the path."""

    vendor: str
    endpoint: str
    op: str
    model: str | None = None
    method: str = "POST"
    version: str = "v1"  # Gemini's API version, quoted in its error messages


_OPENAI_OPS = {
    "/chat/completions": Route("", CHAT, "chat"),
    "/completions": Route("", COMPLETION, "completion"),
    "/embeddings": Route("", EMBEDDINGS, "embeddings"),
    "/models": Route("", MODELS, "models", None, "GET"),
}

_GEMINI_METHODS = {
    "generateContent": (CHAT, "generate"),
    "streamGenerateContent": (CHAT, "stream_generate"),
    "embedContent": (EMBEDDINGS, "embed"),
    "batchEmbedContents": (EMBEDDINGS, "batch_embed"),
    "countTokens": (COUNT_TOKENS, "count_tokens"),
}


def _openai(vendor: str, rest: str) -> Route | None:
    route = _OPENAI_OPS.get(rest)
    if route is not None:
        return route._replace(vendor=vendor)
    if rest.startswith("/models/") and len(rest) > 8:
        return Route(vendor, MODEL, "model", rest[8:], "GET")
    return None


#: ``openai_route(vendor, rest)``: the OpenAI-format route of ``rest`` (``/chat/completions``...) for ``vendor``.
openai_route = _openai


def _gemini(rest: str, version: str) -> Route | None:
    # rest is what follows "/v1beta": "/models", "/models/{m}" or "/models/{m}:{method}"
    if rest == "/models":
        return Route("gemini", MODELS, "models", None, "GET", version)
    if not rest.startswith("/models/"):
        return None
    name, sep, method = rest[8:].partition(":")
    if not name:
        return None
    if not sep:
        return Route("gemini", MODEL, "model", name, "GET", version)
    found = _GEMINI_METHODS.get(method)
    if found is None:
        return None
    return Route("gemini", found[0], found[1], name, "POST", version)


def _responses_route(path: str) -> Route | None:
    from ._responses import route  # the Responses API's paths live with its wire module

    return route(path)


def resolve(path: str, hint: str | None = None) -> Route | None:
    """Map a request path (no query) to a :class:`Route`, or ``None`` when nothing serves it.

    ``hint`` names the vendor whose headers the request carries (``"anthropic"``, ``"gemini"``
    or ``None``); it decides who answers the ``/v1/models`` paths several APIs share.
    """
    if path.endswith("/responses"):
        return _responses_route(path)
    if path.startswith(("/v1/projects/", "/v1/publishers/", "/v1beta1/")):
        from ._vertex import route as vertex_route  # Vertex AI's paths live with its wire module

        return vertex_route(path)
    if path.startswith("/v1/"):
        rest = path[3:]
        if rest == "/messages":
            return Route("anthropic", CHAT, "messages")
        if rest == "/messages/count_tokens":
            return Route("anthropic", COUNT_TOKENS, "count_tokens")
        if rest.startswith("/models"):
            if ":" in rest or hint == "gemini":
                return _gemini(rest, "v1")
            if hint == "anthropic":
                if rest == "/models":
                    return Route("anthropic", MODELS, "models", None, "GET")
                if rest.startswith("/models/"):
                    return Route("anthropic", MODEL, "model", rest[8:], "GET")
        return _openai("openai", rest)
    if path.startswith("/v1beta/"):
        return _gemini(path[7:], "v1beta")
    if path.startswith("/api/v1/"):
        return _openai("openrouter", path[7:])
    if path == "/health":
        return Route("openai", HEALTH, "health", None, "GET")
    if path.startswith("/beta/"):
        return _openai("deepseek", path[5:])
    if path.startswith("/model/"):
        from ._bedrock import route as bedrock_route  # Bedrock Runtime's /model/{id}/{operation}

        return bedrock_route(path)
    if path.startswith("/openai/"):
        from ._azure import route as azure_route  # Azure OpenAI's paths live with its wire module

        return azure_route(path)
    from ._compat import route as compat_route  # /{vendor}/... for the OpenAI-compatible presets

    return compat_route(path) or _openai("deepseek", path)
