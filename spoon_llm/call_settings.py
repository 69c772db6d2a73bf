"""One per-call option vocabulary for every provider: portable settings plus namespaced vendor options.

A call's keyword arguments are a :class:`CallSettings`: portable options (``temperature``, ``max_tokens``,
``tools``...) that every provider maps onto its API or drops with a DEBUG record, plus one namespace per vendor
family (``openai={...}``, ``anthropic={...}``, ``gemini={...}``, ``bedrock={...}``) whose contents only that family
reads. So one call can carry options for every candidate of a cross-vendor fallback::

    await manager.chat("hi", temperature=0.2,
                       gemini={"safety_settings": [...]}, anthropic={"top_k": 5}, openai={"logit_bias": {...}})

Top-level vendor keys that work today on their own vendor (``safety_settings=`` on Gemini, ``betas=`` on Anthropic)
keep working there, and another vendor drops them with a DEBUG record instead of failing the attempt. A key no
vendor knows is still refused by the strict providers (Anthropic, Gemini, Bedrock, the Responses API), which
catches typos; the OpenAI chat family forwards it, as OpenAI-compatible servers take extensions of their own.

The accepted keys of every vendor are declared here, once; the providers' ``KNOWN_KWARGS`` are these sets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from .errors import ValidationError

__all__ = [
    "ACCEPTED_KEYS",
    "NAMESPACES",
    "CallSettings",
    "Family",
    "settings_for",
]

_log = logging.getLogger(__name__)

#: A vendor family: the providers that read one namespace (``azure``, ``groq``... read ``openai={...}``).
Family = Literal["openai", "openai_responses", "anthropic", "gemini", "bedrock", "bedrock_invoke"]

#: The namespace keyword each family reads; the others' namespaces are ignored.
NAMESPACES: Mapping[str, str] = {
    "openai": "openai", "openai_responses": "openai", "anthropic": "anthropic", "gemini": "gemini",
    "bedrock": "bedrock", "bedrock_invoke": "bedrock",
}
_ALL_NAMESPACES = frozenset(NAMESPACES.values())


class CallSettings(TypedDict, total=False):
    """The portable per-call options (a plain ``dict`` at run time); every provider maps or drops each one.

    Vendor-specific options go in the vendor's namespace; ``extra_body`` is merged into every vendor's request
    body (put it inside a namespace to send it to one vendor only).
    """

    model: str
    temperature: float
    max_tokens: int
    top_p: float
    stop: str | Sequence[str]
    seed: int
    tools: Sequence[Any]
    tool_choice: Any
    parallel_tool_calls: bool
    response_format: Any
    reasoning_effort: str
    user: str
    metadata: Mapping[str, Any]
    timeout: float
    extra_headers: Mapping[str, str]
    extra_body: Mapping[str, Any]
    openai: Mapping[str, Any]
    anthropic: Mapping[str, Any]
    gemini: Mapping[str, Any]
    bedrock: Mapping[str, Any]


_ANTHROPIC = frozenset({
    "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "stop_sequences",
    "tools", "tool_choice", "parallel_tool_calls", "response_format", "json", "json_schema", "thinking",
    "reasoning_effort", "cache_control", "auto_cache", "extra_headers", "extra_body", "timeout", "metadata",
    "user", "betas",
})
_GEMINI = frozenset({
    "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "stop_sequences",
    "tools", "tool_choice", "response_format", "json", "json_schema", "thinking", "reasoning_effort",
    "seed", "presence_penalty", "frequency_penalty", "n", "candidate_count", "safety_settings",
    "cached_content", "schema_mode", "extra_headers", "extra_body", "timeout", "response_modalities",
})
_BEDROCK_CONVERSE = frozenset({
    "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stop_sequences", "tools",
    "tool_choice", "parallel_tool_calls", "response_format", "json", "json_schema", "thinking", "guardrail",
    "metadata", "extra_headers", "extra_body", "timeout", "api",
})
_RESPONSES = frozenset({
    # mapped onto the body
    "model", "max_tokens", "max_output_tokens", "max_completion_tokens", "temperature", "top_p", "tools",
    "tool_choice", "response_format", "json", "json_schema", "reasoning_effort", "reasoning", "text",
    "extra_headers", "extra_body", "timeout", "stop",
    # Responses API fields sent as given
    "instructions", "include", "background", "store", "previous_response_id", "conversation", "metadata", "user",
    "parallel_tool_calls", "truncation", "service_tier", "prompt", "prompt_cache_key", "prompt_cache_retention",
    "safety_identifier", "top_logprobs", "max_tool_calls", "stream_options", "context_management",
})
# Chat Completions fields (the OpenAI family forwards unknown keys too; this set only names OpenAI's own options so
# the strict vendors know them as somebody's and drop them).
_OPENAI = frozenset({
    "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "tools", "tool_choice",
    "parallel_tool_calls", "response_format", "json", "json_schema", "reasoning_effort", "user", "metadata",
    "n", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias", "stream_options",
    "stream", "include_usage", "service_tier", "service_tier_hint", "store", "modalities", "audio", "prediction",
    "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier", "extra_headers", "extra_body",
    "timeout",
})

#: The top-level keys each family accepts (``openai``: its documented ones; it forwards unknown keys as well).
ACCEPTED_KEYS: Mapping[str, frozenset[str]] = {
    "openai": _OPENAI,
    "openai_responses": _RESPONSES,
    "anthropic": _ANTHROPIC,
    "gemini": _GEMINI,
    "bedrock": _BEDROCK_CONVERSE,
    "bedrock_invoke": _ANTHROPIC | {"api"},
}
_EVERY_KEY = frozenset().union(*ACCEPTED_KEYS.values())
# Other vendors' options an OpenAI-compatible server would reject. ``top_k`` and ``thinking`` are left out: vLLM,
# OpenRouter and others take them as extensions, so they are forwarded (use the namespaced form across vendors).
_OPENAI_FOREIGN = frozenset({
    "safety_settings", "cached_content", "schema_mode", "response_modalities", "candidate_count", "betas",
    "cache_control", "auto_cache", "stop_sequences", "guardrail", "api",
})
_FOREIGN: Mapping[str, frozenset[str]] = {
    family: (_OPENAI_FOREIGN if family == "openai" else _EVERY_KEY - accepted)
    for family, accepted in ACCEPTED_KEYS.items()
}
# Any of these in a call sends it through the slow path (namespaces and foreign keys); most calls have none.
_TRIGGERS: Mapping[str, frozenset[str]] = {family: keys | _ALL_NAMESPACES for family, keys in _FOREIGN.items()}


def settings_for(kwargs: Mapping[str, Any], family: str, *, provider: str, hint: str = "extra_body={...}"
                 ) -> Mapping[str, Any]:
    """The call's keyword arguments as ``family`` reads them.

    The family's namespace is merged over the top-level keys (``extra_body`` dictionaries are merged too); other
    namespaces and other vendors' options are dropped with a DEBUG record. Strict families raise
    :class:`~spoon_llm.errors.ValidationError` for a key no vendor knows, naming it and ``hint`` (where such fields
    go). Returns ``kwargs`` itself when there is nothing to change (the common case, one set test).
    """
    keys = kwargs.keys()
    accepted = ACCEPTED_KEYS[family]
    strict = family != "openai"
    if keys.isdisjoint(_TRIGGERS[family]) and (not strict or accepted.issuperset(keys)):
        return kwargs
    own = NAMESPACES[family]
    foreign = _FOREIGN[family]
    result: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == own:
            continue
        if key in _ALL_NAMESPACES:
            _check_namespace(key, value, provider)
            _log.debug("%s: %s={...} is for another vendor; ignored", provider, key)
        elif key in foreign:
            _log.debug("%s: option %r belongs to another vendor; dropped", provider, key)
        elif strict and key not in accepted:
            raise ValidationError(f"unknown argument {key!r} for the {provider} provider; vendor-specific fields go "
                                  f"in {own}={{...}} or {hint}", provider=provider)
        else:
            result[key] = value
    namespaced = kwargs.get(own)
    if namespaced is not None:
        _check_namespace(own, namespaced, provider)
        for key, value in namespaced.items():
            if strict and key not in accepted:
                raise ValidationError(f"unknown key {key!r} in {own}={{...}} for the {provider} provider; "
                                      f"other fields go in {own}={{'extra_body': {{...}}}}", provider=provider)
            if key == "extra_body" and isinstance(result.get("extra_body"), Mapping) and isinstance(value, Mapping):
                value = {**result["extra_body"], **value}
            result[key] = value
    return result


def _check_namespace(name: str, value: Any, provider: str) -> None:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name}= takes a dict of that vendor's options, not {type(value).__name__}",
                              provider=provider)
