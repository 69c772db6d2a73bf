"""OpenAI Responses API wire format (``POST /v1/responses``, Azure's ``/openai/v1/responses``): JSON and typed SSE.

Requests are read for what the default and scripted answers need (last user text, function tools, forced
tool choice, ``text.format``, ``max_output_tokens``, ``reasoning``); answers are ``response`` objects with
``reasoning`` (summary), ``message`` (``output_text``) and ``function_call`` output items, streamed as the API
does: ``response.created`` / ``in_progress``, per item ``output_item.added`` ... ``output_item.done`` with the
text, summary and argument deltas in between, then ``response.completed`` (``response.incomplete`` with
``incomplete_details.reason = "max_output_tokens"`` when the answer was cut). Errors use OpenAI's error body.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from . import _answers, _json
from ._answers import Answer, Prompt
from ._faults import Fault
from ._http import JSON, SSE, Ctx, Response, sse_event
from ._routes import CHAT, Route
from ._strict import _bad_request, _out_of_range

VENDOR = "openai_responses"
PATHS = frozenset({"/v1/responses", "/openai/v1/responses"})


#: Top-level fields of ``POST /responses`` (strict mode refuses any other).
FIELDS = frozenset({
    "model", "input", "instructions", "include", "background", "conversation", "max_output_tokens", "max_tool_calls",
    "metadata", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_retention",
    "reasoning", "safety_identifier", "service_tier", "store", "stream", "stream_options", "temperature", "text",
    "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user", "context_management",
})
_RANGES = (("temperature", 0, 2), ("top_p", 0, 1), ("max_output_tokens", 16, None), ("top_logprobs", 0, 20))


def strict_check(body: Mapping[str, Any]) -> Fault | None:
    """What the Responses API refuses: unknown fields, no input at all, an empty input list, values out of range."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return _bad_request(f"Unknown parameter: '{unknown[0]}'.", "unknown_parameter")
    source = body.get("input")
    if source is None and not any(body.get(k) for k in ("previous_response_id", "prompt", "conversation")):
        return _bad_request("Missing required parameter: 'input'.", "missing_required_parameter")
    if isinstance(source, list) and not source:
        return _bad_request("Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty "
                            "array instead.", "empty_array")
    return _out_of_range(body, _RANGES, "openai")


def route(path: str) -> Route | None:
    """The route of a Responses API path, or ``None``."""
    return Route(VENDOR, CHAT, "responses") if path in PATHS else None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content
                        if isinstance(p, dict) and p.get("type") in ("input_text", "output_text", "text"))
    return ""


def prompt_of(body: Any) -> Prompt:
    """Extract a :class:`Prompt` from a ``/responses`` request body."""
    prompt = Prompt()
    if not isinstance(body, dict):
        return prompt
    prompt.model = str(body.get("model") or "")
    prompt.stream = body.get("stream") is True
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    chars = len(str(body.get("instructions") or ""))
    for item in items or ():
        if not isinstance(item, dict):
            continue
        text = _text(item.get("content"))
        chars += len(text) + len(str(item.get("arguments") or "")) + len(_text(item.get("output")))
        if isinstance(item.get("output"), str):
            chars += len(item["output"])
        if item.get("role") == "user" and text:
            prompt.user_text = text
    prompt.input_chars = chars
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("name"), str):
            prompt.tools[tool["name"]] = tool.get("parameters") or {}
    choice = body.get("tool_choice")
    if choice == "required" and prompt.tools:
        prompt.forced_tool = next(iter(prompt.tools))
    elif isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        prompt.forced_tool = choice["name"]
    text_options = body.get("text")
    fmt = text_options.get("format") if isinstance(text_options, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        prompt.json_mode = True
        prompt.json_schema = fmt.get("schema")
    reasoning = body.get("reasoning")
    prompt.thinking = isinstance(reasoning, dict) and bool(reasoning.get("summary"))
    limit = body.get("max_output_tokens")
    prompt.max_tokens = limit if isinstance(limit, int) else None
    return prompt


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "input_tokens": answer.input_tokens,
        "input_tokens_details": {"cached_tokens": answer.cached_tokens},
        "output_tokens": answer.output_tokens,
        "output_tokens_details": {"reasoning_tokens": answer.reasoning_tokens},
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }


def _status(answer: Answer) -> tuple[str, dict[str, str] | None]:
    if answer.finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if answer.finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _items(answer: Answer, ctx: Ctx) -> list[dict[str, Any]]:
    """The finished output items: reasoning summary, message, function calls."""
    items: list[dict[str, Any]] = []
    if answer.reasoning is not None:
        items.append({"id": f"rs_{ctx.token}", "type": "reasoning",
                      "summary": [{"type": "summary_text", "text": answer.reasoning}]})
    if answer.text is not None and (answer.text or not answer.tool_calls):
        status = "incomplete" if answer.finish == "length" else "completed"
        items.append({"id": f"msg_{ctx.token}", "type": "message", "status": status, "role": "assistant",
                      "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": answer.text}]})
    for n, call in enumerate(answer.tool_calls):
        items.append({"id": f"fc_{ctx.token}{n}", "type": "function_call", "status": "completed",
                      "arguments": call.arguments_json, "call_id": call.id, "name": call.name})
    return items


def _response(answer: Answer, prompt: Prompt, ctx: Ctx, *, done: bool) -> dict[str, Any]:
    status, details = _status(answer) if done else ("in_progress", None)
    return {
        "id": f"resp_{ctx.token}",
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "error": None,
        "incomplete_details": details,
        "instructions": None,
        "max_output_tokens": prompt.max_tokens,
        "model": prompt.model,
        "output": _items(answer, ctx) if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": False,
        "text": {"format": {"type": "text"}},
        "usage": _usage(answer) if done else None,
    }


def render(answer: Answer, prompt: Prompt, ctx: Ctx) -> bytes:
    """Render a non-streaming Responses API answer."""
    return _json.dumps(_response(answer, prompt, ctx, done=True))


def _fragments(text: str, parts: int = 3) -> list[str]:
    if not text:
        return []
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def render_stream(answer: Answer, prompt: Prompt, ctx: Ctx) -> list[bytes]:
    """Render a streamed Responses API answer as the API's typed events."""
    frames: list[bytes] = []
    sequence = 0

    def emit(kind: str, **fields: Any) -> None:
        nonlocal sequence
        frames.append(sse_event(_json.dumps_str({"type": kind, **fields, "sequence_number": sequence}), kind))
        sequence += 1

    emit("response.created", response=_response(answer, prompt, ctx, done=False))
    emit("response.in_progress", response=_response(answer, prompt, ctx, done=False))
    for index, item in enumerate(_items(answer, ctx)):
        kind, item_id = item["type"], item["id"]
        if kind == "reasoning":
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            part: dict[str, Any] = {"type": "summary_text", "text": ""}
            emit("response.reasoning_summary_part.added", item_id=item_id, output_index=index, summary_index=0,
                 part=part)
            text = item["summary"][0]["text"]
            for piece in _answers.split_chunks(text):
                emit("response.reasoning_summary_text.delta", item_id=item_id, output_index=index, summary_index=0,
                     delta=piece)
            emit("response.reasoning_summary_text.done", item_id=item_id, output_index=index, summary_index=0,
                 text=text)
            emit("response.reasoning_summary_part.done", item_id=item_id, output_index=index, summary_index=0,
                 part={**part, "text": text})
        elif kind == "message":
            emit("response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "content": []})
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            emit("response.content_part.added", item_id=item_id, output_index=index, content_index=0, part=part)
            for piece in answer.text_chunks():
                emit("response.output_text.delta", item_id=item_id, output_index=index, content_index=0,
                     delta=piece, logprobs=[])
            text = answer.text or ""
            emit("response.output_text.done", item_id=item_id, output_index=index, content_index=0, text=text,
                 logprobs=[])
            emit("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                 part={**part, "text": text})
        else:
            emit("response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "arguments": ""})
            for piece in _fragments(item["arguments"]):
                emit("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=piece)
            emit("response.function_call_arguments.done", item_id=item_id, output_index=index,
                 arguments=item["arguments"])
        emit("response.output_item.done", output_index=index, item=item)
    final = _response(answer, prompt, ctx, done=True)
    emit(f"response.{final['status']}", response=final)
    return frames


def respond(route: Route, body: Any, prompt: Prompt | None, answer: Answer | None, ctx: Ctx) -> Response:
    """Build the successful response (``answer`` and ``prompt`` are always set: the one route is a chat)."""
    assert prompt is not None and answer is not None
    if prompt.stream:
        return Response(200, [("content-type", SSE)], events=render_stream(answer, prompt, ctx))
    return Response(200, [("content-type", JSON)], render(answer, prompt, ctx))
