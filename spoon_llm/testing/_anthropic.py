"""Anthropic Messages API wire format: requests in, JSON / named SSE events out."""

from __future__ import annotations

import math
from typing import Any

from . import _answers, _json
from ._answers import Answer, Prompt
from ._faults import Fault
from ._http import JSON, SSE, Ctx, Response, sse_event
from ._routes import Route

FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}

MODELS = (
    ("claude-opus-4-6", "Claude Opus 4.6", "2026-02-05T00:00:00Z"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
)

_PING = sse_event('{"type": "ping"}', "ping")
_STOP = sse_event('{"type":"message_stop"}', "message_stop")


def _block_text(content: Any) -> tuple[str, int]:
    """Return (text of the text blocks, characters of all blocks) of a message's content."""
    if isinstance(content, str):
        return content, len(content)
    if not isinstance(content, list):
        return "", 0
    texts: list[str] = []
    chars = 0
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            text = str(block.get("text", ""))
            texts.append(text)
            chars += len(text)
        elif kind == "tool_result":
            chars += _block_text(block.get("content"))[1]
        elif kind == "tool_use":
            chars += len(_json.dumps_str(block.get("input", {})))
    return " ".join(texts), chars


def model_and_stream(body: Any) -> tuple[str | None, bool]:
    """Return the model named in a request body and whether a stream was asked for."""
    if not isinstance(body, dict):
        return None, False
    model = body.get("model")
    return (model if isinstance(model, str) else None), body.get("stream") is True


def prompt_of(body: Any) -> Prompt:
    """Extract a :class:`Prompt` from a ``/v1/messages`` (or ``count_tokens``) request body."""
    prompt = Prompt()
    if not isinstance(body, dict):
        return prompt
    prompt.model = str(body.get("model") or "")
    prompt.stream = body.get("stream") is True
    chars = _block_text(body.get("system"))[1]
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        text, n = _block_text(message.get("content"))
        chars += n
        if message.get("role") == "user" and text:
            prompt.user_text = text
    prompt.input_chars = chars
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and isinstance(tool.get("name"), str) and "input_schema" in tool:
            prompt.tools[tool["name"]] = tool.get("input_schema") or {}
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") == "any" and prompt.tools:
            prompt.forced_tool = next(iter(prompt.tools))
        elif choice.get("type") == "tool" and isinstance(choice.get("name"), str):
            prompt.forced_tool = choice["name"]
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        prompt.json_mode = True
        prompt.json_schema = fmt.get("schema")
    thinking = body.get("thinking")
    prompt.thinking = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    limit = body.get("max_tokens")
    prompt.max_tokens = limit if isinstance(limit, int) else None
    return prompt


def _usage(answer: Answer, *, start: bool = False) -> dict[str, Any]:
    # Anthropic's input_tokens leaves out cache reads and writes; our Answer counts the whole prompt.
    fresh = max(0, answer.input_tokens - answer.cached_tokens - answer.cache_write_tokens)
    usage: dict[str, Any] = {
        "input_tokens": fresh,
        "cache_creation_input_tokens": answer.cache_write_tokens,
        "cache_read_input_tokens": answer.cached_tokens,
    }
    if start:
        usage["cache_creation"] = {
            "ephemeral_5m_input_tokens": answer.cache_write_tokens,
            "ephemeral_1h_input_tokens": 0,
        }
        usage["output_tokens"] = 1
        usage["service_tier"] = "standard"
    else:
        usage["output_tokens"] = answer.output_tokens
    return usage


def _signature(ctx: Ctx) -> str:
    return f"EqQBCkYIBxgCKkD{ctx.token}SimulatedSignature=="


def _blocks(answer: Answer, ctx: Ctx) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.reasoning is not None:
        blocks.append({"type": "thinking", "thinking": answer.reasoning, "signature": _signature(ctx)})
    if answer.text is not None and (answer.text or not answer.tool_calls):
        blocks.append({"type": "text", "text": answer.text})
    for call in answer.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
    return blocks


def _message_id(ctx: Ctx) -> str:
    return f"msg_01{ctx.token}"


def render(answer: Answer, prompt: Prompt, ctx: Ctx) -> bytes:
    """Render a non-streaming Messages answer."""
    full_usage = _usage(answer)
    full_usage["cache_creation"] = {
        "ephemeral_5m_input_tokens": answer.cache_write_tokens,
        "ephemeral_1h_input_tokens": 0,
    }
    full_usage["service_tier"] = "standard"
    body = {
        "model": prompt.model,
        "id": _message_id(ctx),
        "type": "message",
        "role": "assistant",
        "content": _blocks(answer, ctx),
        "stop_reason": FINISH.get(answer.finish, answer.finish),
        "stop_sequence": None,
        "usage": full_usage,
    }
    return _json.dumps(body)


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return sse_event(_json.dumps_str(payload), name)


def _fragments(text: str, parts: int = 3) -> list[str]:
    if not text:
        return []
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def render_stream(answer: Answer, prompt: Prompt, ctx: Ctx) -> list[bytes]:
    """Render a streaming Messages answer: message_start ... message_stop, with a ping."""
    start = {
        "type": "message_start",
        "message": {
            "model": prompt.model,
            "id": _message_id(ctx),
            "type": "message",
            "role": "assistant",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(answer, start=True),
        },
    }
    frames = [_event("message_start", start)]
    index = 0

    def block(content_block: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        frames.append(
            _event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": content_block}
            )
        )
        if index == 0:
            frames.append(_PING)  # the real API pings right after the first block starts
        for delta in deltas:
            frames.append(
                _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    if answer.reasoning is not None:
        deltas = [{"type": "thinking_delta", "thinking": p} for p in _answers.split_chunks(answer.reasoning)]
        deltas.append({"type": "signature_delta", "signature": _signature(ctx)})
        block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
    if answer.text is not None and (answer.text or not answer.tool_calls):
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in answer.text_chunks()])
    for call in answer.tool_calls:
        parts = [""] + _fragments(call.arguments_json)
        block(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
            [{"type": "input_json_delta", "partial_json": p} for p in parts],
        )
    if index == 0:
        frames.append(_PING)
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": FINISH.get(answer.finish, answer.finish), "stop_sequence": None},
        "usage": _usage(answer),
    }
    frames.append(_event("message_delta", delta))
    frames.append(_STOP)
    return frames


def _model(entry: tuple[str, str, str]) -> dict[str, Any]:
    return {"type": "model", "id": entry[0], "display_name": entry[1], "created_at": entry[2]}


def respond(route: Route, body: Any, prompt: Prompt | None, answer: Answer | None, ctx: Ctx) -> Response:
    """Build the successful response for ``route`` (``answer`` is set for messages)."""
    op = route.op
    if op == "messages" and prompt is not None and answer is not None:
        if prompt.stream:
            return Response(200, [("content-type", SSE)], events=render_stream(answer, prompt, ctx))
        return Response(200, [("content-type", JSON)], render(answer, prompt, ctx))
    if op == "count_tokens":
        tokens = max(1, _answers.estimate_tokens(prompt_of(body).input_chars))
        return Response(200, [("content-type", JSON)], _json.dumps({"input_tokens": tokens}))
    if op == "models":
        data = [_model(m) for m in MODELS]
        out = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        return Response(200, [("content-type", JSON)], _json.dumps(out))
    if op == "model":
        name = route.model or ""
        found = next((m for m in MODELS if m[0] == name), (name, name, "2025-01-01T00:00:00Z"))
        return Response(200, [("content-type", JSON)], _json.dumps(_model(found)))
    return error_response(route, 404, Fault(status=404), None, 0, "req_unknown")


_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    ),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def error_response(
    route: Route, status: int, fault: Fault, model: str | None, input_tokens: int, request_id: str
) -> Response:
    """Build an Anthropic error body (``{"type":"error","error":{...},"request_id":...}``)."""
    if fault.context_limit is not None:
        used = max(input_tokens, fault.context_limit + 1)
        err_type, message = (
            "invalid_request_error",
            f"prompt is too long: {used} tokens > {fault.context_limit} maximum",
        )
    else:
        default = _ERRORS.get(status) or (
            "api_error" if status >= 500 else "invalid_request_error",
            f"Simulated error {status}.",
        )
        err_type, message = default[0], default[1].format(model=model or "unknown")
    if fault.message is not None:
        message = fault.message
    if fault.error_type is not None:
        err_type = fault.error_type
    body = {"type": "error", "error": {"type": err_type, "message": message}, "request_id": request_id}
    headers = [("content-type", JSON)]
    if fault.retry_after is not None:
        headers.append(("retry-after", str(max(0, math.ceil(fault.retry_after)))))
    if status in (429, 529) or status >= 500:
        headers.append(("x-should-retry", "true"))
    return Response(status, headers, _json.dumps(body))
