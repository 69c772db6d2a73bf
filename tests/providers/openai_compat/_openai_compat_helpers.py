"""Helpers for the OpenAI-compatible provider tests: recorded request -> our call, and result comparison."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from spoon_llm.types import LLMResponse, LLMResponseChunk, TokenUsage, ToolCall

OPENAI_KEY = "sk-test-openai-key-0001"
OPENROUTER_KEY = "sk-or-v1-test-key-0002"
DEEPSEEK_KEY = "sk-test-deepseek-key-0003"


@dataclass
class WireCall:
    """What to call on the provider to reproduce a recorded request."""

    method: str  # chat | chat_stream | completion | completion_stream | embed
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    base_suffix: str = ""  # e.g. DeepSeek's "/beta"


def call_from_recorded(request: dict[str, Any]) -> WireCall:
    """Map a recorded OpenAI-style request onto our API: messages stay wire dicts, parameters become keywords.

    ``stream_options`` is reproduced with ``include_usage`` (``False`` when the recording asked for no usage,
    so the outgoing body matches); ``encoding_format`` absent in the recording is passed as ``None`` (omit).
    """
    path = request["path"].partition("?")[0]
    body = dict(request.get("body") or {})
    suffix = "/beta" if path.startswith("/beta/") else ""
    stream = bool(body.pop("stream", False))
    options = body.pop("stream_options", None)
    kwargs: dict[str, Any] = {}
    if stream:
        if isinstance(options, dict) and set(options) == {"include_usage"}:
            kwargs["include_usage"] = bool(options["include_usage"])
        else:
            kwargs["include_usage"] = False
            if options is not None:
                kwargs["stream_options"] = options
    elif options is not None:
        kwargs["stream_options"] = options
    if path.endswith("/embeddings"):
        inputs = body.pop("input")
        kwargs.update(body)
        kwargs.setdefault("encoding_format", None)
        return WireCall("embed", (inputs,), kwargs, suffix)
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        prompt = body.pop("prompt")
        kwargs.update(body)
        return WireCall("completion_stream" if stream else "completion", (prompt,), kwargs, suffix)
    if path.endswith("/chat/completions"):
        messages = body.pop("messages")
        kwargs.update(body)
        return WireCall("chat_stream" if stream else "chat", (messages,), kwargs, suffix)
    # A non-inference endpoint (the recorded /v1/traces/ingest 500): any chat request receives the replay.
    return WireCall("chat", ([{"role": "user", "content": "ping"}],), {"model": "gpt-4o-mini"}, suffix)


def parsed_arguments(call: ToolCall) -> tuple[Any, bool]:
    """Tool-call arguments as JSON, the corpus way: empty -> {}, unparseable -> (raw string, False)."""
    raw = call.function.arguments
    if raw is None or not raw.strip():
        return {}, True
    try:
        return json.loads(raw), True
    except json.JSONDecodeError:
        return raw, False


def tool_calls_as_expected(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Our tool calls in the corpus' ``expected.tool_calls`` shape."""
    out = []
    for call in calls:
        args, ok = parsed_arguments(call)
        item: dict[str, Any] = {"id": call.id, "name": call.function.name, "arguments": args}
        if not ok:
            item["arguments_parse_error"] = True
        out.append(item)
    return out


_USAGE_FIELDS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "reasoning_tokens")


def usage_as_expected(usage: TokenUsage | None, expected: dict[str, Any] | None) -> dict[str, Any] | None:
    """Our usage restricted to the fields the corpus recorded for this file."""
    if usage is None:
        return None
    if expected is None:
        return {k: getattr(usage, k) for k in _USAGE_FIELDS}
    return {k: getattr(usage, k) for k in expected}


@dataclass
class StreamResult:
    """Everything a consumed stream produced."""

    chunks: list[LLMResponseChunk]
    error: BaseException | None = None

    @property
    def text(self) -> str:
        return "".join(c.delta for c in self.chunks)

    @property
    def reasoning(self) -> str:
        return "".join(c.reasoning_delta for c in self.chunks)

    @property
    def final(self) -> LLMResponseChunk | None:
        return self.chunks[-1] if self.chunks and self.chunks[-1].kind == "final" else None


def response_summary(response: LLMResponse) -> dict[str, Any]:
    """A non-stream answer in the corpus' ``expected`` shape (only what we can compare)."""
    return {
        "text": response.content,
        "tool_calls": tool_calls_as_expected(response.tool_calls),
        "finish_reason": response.native_finish_reason,
        "n_choices": response.metadata.get("n_choices", 1),
        "reasoning_text": response.reasoning,
        "refusal": response.refusal,
        "native_finish_reason": response.metadata.get("native_finish_reason"),
    }


def stream_summary(result: StreamResult) -> dict[str, Any]:
    """A consumed stream in the corpus' ``expected`` shape."""
    final = result.final
    meta = final.metadata if final is not None else {}
    return {
        "text": result.text,
        "tool_calls": tool_calls_as_expected(final.tool_calls) if final is not None else [],
        "finish_reason": final.native_finish_reason if final is not None else None,
        "n_choices": meta.get("n_choices", 1),
        "reasoning_text": result.reasoning or None,
        "refusal": meta.get("refusal"),
        "native_finish_reason": meta.get("native_finish_reason"),
    }


def normalise_body(body: Any) -> Any:
    """A request body for comparison.

    At the top level ``null`` means "not given" to the API, and ``"stream": false`` is its default: both are the
    same as leaving the field out; so is ``"content": null`` on an assistant turn (which then carries tool calls).
    """
    body = json.loads(json.dumps(body, sort_keys=True))
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if v is not None and not (k == "stream" and v is False)}
        for message in body.get("messages") or ():
            if isinstance(message, dict) and message.get("role") == "assistant" and message.get("content", 1) is None:
                del message["content"]
    return body


def body_differences(sent: Any, recorded: Any, path: str = "") -> list[str]:
    """Human-readable differences between the body we sent and the recorded one."""
    if isinstance(sent, dict) and isinstance(recorded, dict):
        out = []
        for key in sorted(set(sent) | set(recorded)):
            sub = f"{path}.{key}" if path else key
            if key not in sent:
                out.append(f"{sub}: missing (recorded {json.dumps(recorded[key])[:80]})")
            elif key not in recorded:
                out.append(f"{sub}: added {json.dumps(sent[key])[:80]}")
            else:
                out.extend(body_differences(sent[key], recorded[key], sub))
        return out
    if isinstance(sent, list) and isinstance(recorded, list):
        if len(sent) != len(recorded):
            return [f"{path}: {len(sent)} items sent, {len(recorded)} recorded"]
        out = []
        for i, (a, b) in enumerate(zip(sent, recorded, strict=True)):
            out.extend(body_differences(a, b, f"{path}[{i}]"))
        return out
    if sent != recorded:
        return [f"{path}: sent {json.dumps(sent)[:80]}, recorded {json.dumps(recorded)[:80]}"]
    return []
