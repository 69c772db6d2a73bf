"""Answer side of the OpenAI-compatible wire mapping: the vendor's decoded JSON -> our types.

:func:`parse_chat_completion`, :func:`parse_text_completion`, :func:`parse_embeddings`, :func:`parse_usage` and
the helpers the stream decoder shares (:func:`content_text`, :func:`thinking_text`, :func:`vendor_cost`).
"""

from __future__ import annotations

import base64
import json
import sys
import time
from array import array
from collections.abc import Mapping
from typing import Any

from ..._trusted import build_trusted
from ...types import (
    CostInfo,
    EmbeddingResponse,
    FunctionCall,
    LLMResponse,
    TokenUsage,
    ToolCall,
)
from ._dialect import normalize_finish_reason

__all__ = [
    "content_text",
    "parse_chat_completion",
    "parse_embeddings",
    "parse_text_completion",
    "parse_tool_calls",
    "parse_usage",
    "thinking_text",
    "vendor_cost",
]


# -- responses ----------------------------------------------------------------------------------------------

#: The fields parse_usage and parse_chat_completion set (``model_fields_set`` as the keyword calls would make it).
_USAGE_FIELDS = frozenset({"input_tokens", "output_tokens", "total_tokens", "cached_input_tokens",
                           "cache_write_tokens", "reasoning_tokens", "raw"})
_RESPONSE_FIELDS = frozenset({"content", "provider", "model", "finish_reason", "native_finish_reason", "tool_calls",
                              "usage", "cost", "reasoning", "refusal", "metadata", "request_id", "duration"})


def parse_usage(usage: Any) -> TokenUsage | None:
    """Our :class:`TokenUsage` from an OpenAI-compatible ``usage`` object (``None`` when there is none).

    ``cached_input_tokens`` comes from ``prompt_tokens_details.cached_tokens`` (DeepSeek: else
    ``prompt_cache_hit_tokens``), ``cache_write_tokens`` from OpenRouter's ``prompt_tokens_details
    .cache_write_tokens``, ``reasoning_tokens`` from ``completion_tokens_details.reasoning_tokens``.
    """
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    cached: Any = None
    write = reasoning = 0
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        cached = details.get("cached_tokens")
        write = details.get("cache_write_tokens") or 0
    if cached is None:
        cached = usage.get("prompt_cache_hit_tokens") or 0
    details = usage.get("completion_tokens_details")
    if isinstance(details, dict):
        reasoning = details.get("reasoning_tokens") or 0
    total = usage.get("total_tokens") or prompt + completion
    if type(prompt) is int and type(completion) is int and type(total) is int and type(cached) is int \
            and type(write) is int and type(reasoning) is int:
        # Plain ints (what every vendor sends): nothing for validation to convert. total is never 0 with tokens in.
        return build_trusted(TokenUsage, {
            "input_tokens": prompt, "output_tokens": completion, "total_tokens": total,
            "cached_input_tokens": cached, "cache_write_tokens": write, "reasoning_tokens": reasoning, "raw": usage,
        }, _USAGE_FIELDS)
    return TokenUsage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=total,
        cached_input_tokens=cached,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
        raw=usage,
    )


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a list some servers return."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content
                       if isinstance(p, dict) and p.get("type") in (None, "text", "output_text"))
    return ""


def parse_tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    """The tool calls of an assistant message; a legacy ``function_call`` becomes one call with id ``None``."""
    raw = message.get("tool_calls")
    calls = []
    if raw:
        for call in raw:
            fn = call.get("function") or {}
            args = fn.get("arguments")
            if not isinstance(args, str):
                args = "{}" if args is None else json.dumps(args, ensure_ascii=False)
            calls.append(ToolCall(
                id=call.get("id"), type="function",
                function=FunctionCall(name=fn.get("name") or "", arguments=args or "{}"),
                provider_data=None,
            ))
        return calls
    legacy = message.get("function_call")
    if legacy:
        args = legacy.get("arguments")
        if not isinstance(args, str):
            args = "{}" if args is None else json.dumps(args, ensure_ascii=False)
        calls.append(ToolCall(
            id=None, type="function",
            function=FunctionCall(name=legacy.get("name") or "", arguments=args or "{}"),
            provider_data=None,
        ))
    return calls


def thinking_text(content: Any) -> str:
    """The reasoning in Mistral's ``{"type": "thinking", "thinking": [{"type": "text", ...}]}`` content parts."""
    if not isinstance(content, list):
        return ""
    out = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "thinking":
            inner = part.get("thinking")
            out.append(inner if isinstance(inner, str) else content_text(inner))
    return "".join(out)


def _reasoning_of(message: Mapping[str, Any]) -> str | None:
    value = message.get("reasoning_content") or message.get("reasoning") or thinking_text(message.get("content"))
    return value if isinstance(value, str) and value else None


def vendor_cost(usage: Any) -> CostInfo | None:
    """The cost a vendor reports in its usage object (OpenRouter ``usage.cost``), else ``None``."""
    if not isinstance(usage, dict):
        return None
    cost = usage.get("cost")
    if not isinstance(cost, (int, float)) or isinstance(cost, bool):
        return None
    details = usage.get("cost_details")
    input_cost = output_cost = 0.0
    if isinstance(details, dict):
        input_cost = float(details.get("upstream_inference_prompt_cost") or 0.0)
        output_cost = float(details.get("upstream_inference_completions_cost") or 0.0)
    return CostInfo(input_cost=input_cost, output_cost=output_cost, total_cost=float(cost), source="provider")


def parse_chat_completion(
    data: Mapping[str, Any],
    *,
    provider: str,
    model: str,
    request_id: str | None = None,
    duration: float = 0.0,
) -> LLMResponse:
    """Our :class:`LLMResponse` from a decoded ``chat.completion`` object (choice 0; others in metadata).

    Metadata keeps ``id``, ``system_fingerprint``, ``service_tier``, ``annotations``, ``logprobs``, OpenRouter's
    ``provider`` and ``native_finish_reason``, the vendor's usage extras (cost) and, when ``n > 1``, ``choices``.
    """
    choices = data.get("choices") or []
    choice = choices[0] if choices else {}
    message = choice.get("message") or {}
    native = choice.get("finish_reason")
    metadata: dict[str, Any] = {}
    if "id" in data:
        metadata["id"] = data["id"]
    for key in ("system_fingerprint", "service_tier", "provider", "citations", "prompt_filter_results"):
        value = data.get(key)
        if value is not None:
            metadata[key] = value
    value = choice.get("native_finish_reason")
    if value is not None:
        metadata["native_finish_reason"] = value
    if choice.get("logprobs") is not None:
        metadata["logprobs"] = choice["logprobs"]
    if choice.get("content_filter_results"):  # Azure: the categories behind a content_filter finish
        metadata["content_filter_results"] = choice["content_filter_results"]
    for key in ("annotations", "audio"):
        value = message.get(key)
        if value:
            metadata[key] = value
    details = message.get("reasoning_details")
    if details:
        metadata["provider_data"] = {"reasoning_details": details}
    usage_raw = data.get("usage")
    cost = None
    if isinstance(usage_raw, dict) and "cost" in usage_raw:
        metadata["cost"] = usage_raw.get("cost")
        if usage_raw.get("cost_details") is not None:
            metadata["cost_details"] = usage_raw["cost_details"]
        cost = vendor_cost(usage_raw)
    if len(choices) > 1:
        metadata["n_choices"] = len(choices)
        metadata["choices"] = [
            {"index": c.get("index", i), "content": content_text((c.get("message") or {}).get("content")),
             "finish_reason": c.get("finish_reason"),
             "tool_calls": parse_tool_calls(c.get("message") or {})}
            for i, c in enumerate(choices)
        ]
    refusal = message.get("refusal")
    answered_by = data.get("model") or model
    request_id = request_id or data.get("id")
    if (type(answered_by) is str and (native is None or type(native) is str) and type(duration) is float
            and (request_id is None or type(request_id) is str)):
        # The vendor's values are of the fields' types and the rest is built here: nothing for validation to do.
        return build_trusted(LLMResponse, {
            "content": content_text(message.get("content")), "provider": provider, "model": answered_by,
            "finish_reason": normalize_finish_reason(native), "native_finish_reason": native,
            "tool_calls": parse_tool_calls(message), "usage": parse_usage(usage_raw), "cost": cost,
            "reasoning": _reasoning_of(message), "refusal": refusal if isinstance(refusal, str) and refusal else None,
            "metadata": metadata, "request_id": request_id, "duration": duration, "timestamp": time.time(),
            "deployment": None, "attempts": [], "fallback_path": [], "parsed": None, "messages": None,
        }, _RESPONSE_FIELDS)
    return LLMResponse(
        content=content_text(message.get("content")),
        provider=provider,
        model=answered_by,
        finish_reason=normalize_finish_reason(native),
        native_finish_reason=native,
        tool_calls=parse_tool_calls(message),
        usage=parse_usage(usage_raw),
        cost=cost,
        reasoning=_reasoning_of(message),
        refusal=refusal if isinstance(refusal, str) and refusal else None,
        metadata=metadata,
        request_id=request_id,
        duration=duration,
    )


def parse_text_completion(
    data: Mapping[str, Any],
    *,
    provider: str,
    model: str,
    request_id: str | None = None,
    duration: float = 0.0,
) -> LLMResponse:
    """Our :class:`LLMResponse` from a legacy ``text_completion`` object (``choices[0].text``)."""
    choices = data.get("choices") or []
    choice = choices[0] if choices else {}
    native = choice.get("finish_reason")
    metadata: dict[str, Any] = {"id": data.get("id"), "endpoint": "completions"}
    if len(choices) > 1:
        metadata["n_choices"] = len(choices)
        metadata["choices"] = [{"index": c.get("index", i), "content": c.get("text") or "",
                                "finish_reason": c.get("finish_reason")} for i, c in enumerate(choices)]
    return LLMResponse(
        content=choice.get("text") or "",
        provider=provider,
        model=data.get("model") or model,
        finish_reason=normalize_finish_reason(native),
        native_finish_reason=native,
        usage=parse_usage(data.get("usage")),
        metadata=metadata,
        request_id=request_id or data.get("id"),
        duration=duration,
    )


def _decode_base64_floats(value: str) -> list[float]:
    values = array("f")
    values.frombytes(base64.b64decode(value))
    if sys.byteorder != "little":  # the wire format is little-endian float32
        values.byteswap()
    return values.tolist()


def parse_embeddings(
    data: Mapping[str, Any],
    *,
    provider: str,
    model: str,
    request_id: str | None = None,
) -> EmbeddingResponse:
    """Our :class:`EmbeddingResponse` from a decoded ``/embeddings`` answer (float lists or base64), in order."""
    items = sorted(data.get("data") or [], key=lambda d: d.get("index", 0))
    vectors = []
    for item in items:
        vector = item.get("embedding")
        vectors.append(_decode_base64_floats(vector) if isinstance(vector, str) else vector)
    usage_raw = data.get("usage")
    usage = None
    if isinstance(usage_raw, dict):
        prompt = usage_raw.get("prompt_tokens") or 0
        usage = TokenUsage(input_tokens=prompt, output_tokens=0,
                                           total_tokens=usage_raw.get("total_tokens") or prompt,
                                           cached_input_tokens=0, cache_write_tokens=0, reasoning_tokens=0,
                                           raw=usage_raw)
    return EmbeddingResponse(
        embeddings=vectors, provider=provider, model=data.get("model") or model, usage=usage, cost=None,
        metadata={}, request_id=request_id, duration=0.0,
    )

