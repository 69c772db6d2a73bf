"""Strict mode: reject what the real APIs reject, in their own words.

The default simulator is lenient: it answers anything that parses, so a client bug can pass unnoticed. With strict
checks on (``spoon-llm simulate --strict``, or ``ProviderSimulator(strict=True)``) a request is refused, with the
vendor's status and error shape, when it

* carries no credentials (OpenAI family: ``Authorization: Bearer``; Anthropic: ``x-api-key``; Gemini:
  ``x-goog-api-key`` or ``?key=``): 401 (Gemini: 403);
* names a model outside the list the simulator was given (when one was given): 404 in the vendor's wording;
* sends an empty conversation, a parameter out of its documented range, or (OpenAI, Anthropic, Gemini) a
  top-level field the API does not know: 400.

Only chat requests are checked for parameters and fields; every route is checked for credentials and models.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ._faults import Fault
from ._routes import CHAT, HEALTH, OPENAI_FAMILY, Route

__all__ = ["StrictChecks"]

_OPENAI_FIELDS = frozenset({
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
    "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
    "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
})
_ANTHROPIC_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "context_management",
    "output_config",
})
_GEMINI_FIELDS = frozenset({
    "contents", "systemInstruction", "system_instruction", "tools", "toolConfig", "tool_config", "safetySettings",
    "safety_settings", "generationConfig", "generation_config", "cachedContent", "cached_content", "labels", "model",
})

# (field, lowest, highest) per vendor; None = unbounded on that side.
_OPENAI_RANGES = (("temperature", 0, 2), ("top_p", 0, 1), ("n", 1, 128), ("presence_penalty", -2, 2),
                  ("frequency_penalty", -2, 2), ("max_tokens", 1, None), ("max_completion_tokens", 1, None),
                  ("top_logprobs", 0, 20))
_ANTHROPIC_RANGES = (("temperature", 0, 1), ("top_p", 0, 1), ("top_k", 0, None), ("max_tokens", 1, None))
_GEMINI_RANGES = (("temperature", 0, 2), ("topP", 0, 1), ("top_p", 0, 1), ("topK", 1, None), ("top_k", 1, None),
                  ("maxOutputTokens", 1, None), ("max_output_tokens", 1, None), ("candidateCount", 1, 8),
                  ("candidate_count", 1, 8))


def _bad_request(message: str, code: str | None = None) -> Fault:
    return Fault(status=400, message=message, error_type="invalid_request_error", code=code)


def _has_credentials(route: Route, headers: list[tuple[bytes, bytes]], query: Mapping[str, str]) -> bool:
    names = {name.lower(): value.strip() for name, value in headers}
    bearer = names.get(b"authorization", b"")
    if bearer.lower().startswith(b"bearer ") and bearer[7:].strip():
        return True
    if route.vendor == "anthropic":
        return bool(names.get(b"x-api-key"))
    if route.vendor == "gemini":
        return bool(names.get(b"x-goog-api-key")) or bool(query.get("key"))
    return bool(names.get(b"api-key"))  # Azure-style deployments of the OpenAI API


def _auth_fault(route: Route) -> Fault:
    if route.vendor == "anthropic":
        return Fault(status=401, message="x-api-key header is required", error_type="authentication_error")
    if route.vendor == "gemini":
        return Fault(status=403, message="Method doesn't allow unregistered callers (callers without established "
                                         "identity). Please use API Key or other form of API consumer identity "
                                         "to call this API.", error_type="PERMISSION_DENIED")
    return Fault(status=401, message="You didn't provide an API key. You need to provide your API key in an "
                                     "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                 error_type="invalid_request_error")


def _out_of_range(values: Mapping[str, Any], ranges: tuple[tuple[str, float, float | None], ...],
                  vendor: str) -> Fault | None:
    for name, low, high in ranges:
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _bad_request(f"Invalid type for '{name}': expected a number, but got {type(value).__name__} "
                                "instead.", "invalid_type")
        if value < low or (high is not None and value > high):
            if vendor == "anthropic":
                side = f"greater than or equal to {low}" if value < low else f"less than or equal to {high}"
                return _bad_request(f"{name}: Input should be {side}")
            if vendor == "gemini":
                return Fault(status=400, message=f"Invalid value at 'generation_config.{name}' ({value}): must be "
                                                 f"within [{low}, {high if high is not None else 'inf'}]",
                             error_type="INVALID_ARGUMENT")
            if value < low:
                return _bad_request(f"Invalid '{name}': decimal below minimum value. Expected a value >= {low}, but "
                                    f"got {value} instead.", "decimal_below_min_value")
            return _bad_request(f"Invalid '{name}': decimal above maximum value. Expected a value <= {high}, but got "
                                f"{value} instead.", "decimal_above_max_value")
    return None


def _openai_chat(vendor: str, body: Mapping[str, Any]) -> Fault | None:
    if vendor == "openai":
        unknown = sorted(set(body) - _OPENAI_FIELDS)
        if unknown:
            return _bad_request(f"Unrecognized request argument supplied: {unknown[0]}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _bad_request("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                            "empty array instead.", "empty_array")
    return _out_of_range(body, _OPENAI_RANGES, "openai")


def _anthropic_chat(body: Mapping[str, Any]) -> Fault | None:
    unknown = sorted(set(body) - _ANTHROPIC_FIELDS)
    if unknown:
        return _bad_request(f"{unknown[0]}: Extra inputs are not permitted")
    if "max_tokens" not in body:
        return _bad_request("max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _bad_request("messages: at least one message is required")
    return _out_of_range(body, _ANTHROPIC_RANGES, "anthropic")


def _gemini_chat(body: Mapping[str, Any]) -> Fault | None:
    unknown = sorted(set(body) - _GEMINI_FIELDS)
    if unknown:
        return Fault(status=400, message=f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find '
                                         "field.", error_type="INVALID_ARGUMENT")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return Fault(status=400, message="* GenerateContentRequest.contents: contents is not specified",
                     error_type="INVALID_ARGUMENT")
    config = body.get("generationConfig", body.get("generation_config")) or {}
    return _out_of_range(config if isinstance(config, Mapping) else {}, _GEMINI_RANGES, "gemini")


class StrictChecks:
    """The checks of strict mode; ``models`` (when given) is every model id the simulator accepts."""

    def __init__(self, models: Collection[str] | None = None) -> None:
        self.models = frozenset(models) if models else None

    def check(self, route: Route, headers: list[tuple[bytes, bytes]], query: Mapping[str, str], body: Any,
              model: str | None) -> Fault | None:
        """The fault a real API would answer this request with, or ``None`` when it would accept it."""
        if route.endpoint == HEALTH:
            return None
        if not _has_credentials(route, headers, query):
            return _auth_fault(route)
        if self.models is not None and model is not None and model not in self.models:
            return Fault(status=404)
        if route.endpoint != CHAT or route.op == "completion":
            return None
        if not isinstance(body, Mapping):
            return _bad_request("The request body must be a JSON object.")
        if route.vendor == "openai_responses":
            from ._responses import strict_check  # the Responses API's fields live with its wire module

            return strict_check(body)
        if route.vendor in OPENAI_FAMILY:
            return _openai_chat(route.vendor, body)
        if route.vendor == "anthropic":
            return _anthropic_chat(body)
        return _gemini_chat(body)
