"""Anthropic request mapping: our messages, tools and call options -> the ``/v1/messages`` JSON body.

Pure functions over plain data (no SDK import), so every transport reuses them unchanged. Rules:

* every ``system``/``developer`` message goes into ``system``, in order;
* tool results become ``tool_result`` blocks in a user turn, and consecutive turns of one role are merged;
* an assistant turn that came from a response is sent back exactly (thinking blocks with their signatures,
  server-tool blocks) from ``Message.provider_data["anthropic"]["content"]``, unless it was edited since; a user
  turn carrying such raw blocks (block types our schema lacks) is sent as given too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...call_settings import ACCEPTED_KEYS, settings_for
from ...errors import ValidationError
from ...structured._schema import OutputSchema
from ...types import DocumentPart, ImagePart, Message, TextPart, ToolCall, ToolSpec
from .._common import CallOptions, json_schema_of

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "KNOWN_KWARGS",
    "CallOptions",
    "RequestDefaults",
    "apply_auto_cache",
    "build_request",
    "convert_messages",
    "convert_tool_choice",
    "convert_tools",
    "json_schema_of",
]

#: ``max_tokens`` is mandatory on this API; used when neither the call nor the configuration gives one.
DEFAULT_MAX_TOKENS = 4096
#: Anthropic accepts at most four cache breakpoints per request.
MAX_CACHE_BREAKPOINTS = 4
_EPHEMERAL: dict[str, Any] = {"type": "ephemeral"}
_JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."

#: Per-call keyword arguments this provider understands (declared in :mod:`spoon_llm.call_settings`).
KNOWN_KWARGS = ACCEPTED_KEYS["anthropic"]


@dataclass(frozen=True)
class RequestDefaults:
    """Per-deployment defaults, taken once from the configuration."""

    model: str
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    auto_cache: bool = False
    extra_body: Mapping[str, Any] = field(default_factory=dict)


def build_request(
    messages: Sequence[Message],
    kwargs: Mapping[str, Any],
    defaults: RequestDefaults,
    *,
    stream: bool = False,
) -> tuple[dict[str, Any], CallOptions]:
    """The ``/v1/messages`` body for ``messages`` and the call's keyword arguments, plus transport options.

    Raises :class:`~spoon_llm.errors.ValidationError` for arguments this provider does not understand.
    """
    kwargs = settings_for(kwargs, "anthropic", provider="anthropic")
    get = kwargs.get
    model = get("model") or defaults.model
    system, turns = convert_messages(messages)
    body: dict[str, Any] = {"model": model}

    thinking = _thinking(get("thinking"))
    max_tokens = get("max_tokens") or get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = defaults.max_tokens or DEFAULT_MAX_TOKENS
        budget = thinking.get("budget_tokens") if thinking else None
        if isinstance(budget, int) and max_tokens <= budget:
            # The answer must fit after the thinking budget; only adjusted when the caller chose neither.
            max_tokens = budget + DEFAULT_MAX_TOKENS
    body["max_tokens"] = max_tokens
    body["messages"] = turns

    response_format = get("response_format")
    json_schema, json_mode = json_schema_of(response_format, get("json"), get("json_schema"), "anthropic")
    if json_mode and json_schema is None:
        # A typed schema native structured output cannot express (free-form maps) is asked for by instruction.
        instruction = response_format.instruction() if isinstance(response_format, OutputSchema) else (
            _JSON_INSTRUCTION)
        system = [*(system or []), {"type": "text", "text": instruction}]
    if system:
        body["system"] = system[0]["text"] if len(system) == 1 and len(system[0]) == 2 else system

    temperature = get("temperature")
    if temperature is None and not (thinking and thinking.get("type") != "disabled"):
        # Extended thinking rejects a temperature; a configured default must not break it.
        temperature = defaults.temperature
    if temperature is not None:
        body["temperature"] = temperature
    top_p = get("top_p", defaults.top_p)
    if top_p is not None:
        body["top_p"] = top_p
    if get("top_k") is not None:
        body["top_k"] = get("top_k")
    stop = get("stop", get("stop_sequences"))
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if thinking:
        body["thinking"] = thinking
    output_config: dict[str, Any] = {}
    if json_schema is not None:
        output_config["format"] = {"type": "json_schema", "schema": json_schema}
    if get("reasoning_effort"):
        output_config["effort"] = get("reasoning_effort")
    if output_config:
        body["output_config"] = output_config

    tools = get("tools")
    if tools:
        body["tools"] = convert_tools(tools)
    # Without tools there is nothing to run in parallel; a lone disable flag would be an invalid tool_choice.
    choice = convert_tool_choice(get("tool_choice"), get("parallel_tool_calls") if tools else None)
    if choice is not None:
        body["tool_choice"] = choice
    user = get("user")
    metadata = get("metadata")
    if metadata or user:
        body["metadata"] = {**(metadata or {}), **({"user_id": user} if user else {})}
    if get("cache_control") is not None:
        # The API's top-level automatic caching: it places one breakpoint on the last cacheable block.
        body["cache_control"] = get("cache_control")
    if stream:
        body["stream"] = True
    if defaults.extra_body:
        body.update(defaults.extra_body)
    extra_body = get("extra_body")
    if extra_body:
        body.update(extra_body)
    if get("auto_cache", defaults.auto_cache):
        apply_auto_cache(body)

    headers = dict(get("extra_headers") or {}) or None
    betas = get("betas")
    if betas:
        headers = {**(headers or {}), "anthropic-beta": ",".join([betas] if isinstance(betas, str) else betas)}
    return body, CallOptions(model=model, timeout=get("timeout"), headers=headers)


# -- messages ---------------------------------------------------------------------------------------------


def convert_messages(messages: Sequence[Message]) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """Split our messages into Anthropic ``system`` blocks and merged user/assistant turns."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    call_ids: list[str] = []
    for message in messages:
        role = message.role
        if role == "system" or role == "developer":
            system.extend(_system_blocks(message))
            continue
        if role == "tool":
            content: str | list[dict[str, Any]] = [_tool_result(message)]
            role = "user"
        elif role == "assistant":
            content = _assistant_content(message, call_ids)
        else:
            content = _user_content(message)
        if not content:
            continue  # the API rejects empty turns; an empty message adds nothing
        if turns and turns[-1]["role"] == role:
            last = turns[-1]
            last["content"] = _as_blocks(last["content"]) + _as_blocks(content)
        else:
            turns.append({"role": role, "content": content})
    return system or None, turns


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _system_blocks(message: Message) -> list[dict[str, Any]]:
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, TextPart):
            raise ValidationError("system messages may only contain text for the anthropic provider",
                                  provider="anthropic")
        blocks.append(_text_block(part))
    return blocks


def _text_block(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _user_content(message: Message) -> str | list[dict[str, Any]]:
    raw = _preserved_blocks(message)
    if raw is not None and _matches(raw, message):
        # Blocks our schema has no type for (container uploads, tool references...) travel verbatim.
        return [dict(block) for block in raw]
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return [_part_block(part) for part in content]


def _part_block(part: TextPart | ImagePart | DocumentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return _text_block(part)
    block: dict[str, Any]
    if isinstance(part, ImagePart):
        block = {"type": "image", "source": _source(part.url, part.data, part.media_type or "image/png")}
    else:
        block = {"type": "document", "source": _document_source(part)}
        if part.filename:
            block["title"] = part.filename
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _source(url: str | None, data: str | None, media_type: str) -> dict[str, Any]:
    if data is not None:
        return {"type": "base64", "media_type": media_type, "data": data}
    assert url is not None
    if url.startswith("data:") and ";base64," in url:
        header, payload = url.split(",", 1)
        return {"type": "base64", "media_type": header[5:].split(";", 1)[0] or media_type, "data": payload}
    return {"type": "url", "url": url}


def _document_source(part: DocumentPart) -> dict[str, Any]:
    if part.data is not None and part.media_type.startswith("text/"):
        import base64

        # Plain-text documents travel as text, not base64.
        text = base64.b64decode(part.data).decode("utf-8", errors="replace")
        return {"type": "text", "media_type": "text/plain", "data": text}
    return _source(part.url, part.data, part.media_type)


def _tool_result(message: Message) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    content = message.content
    if isinstance(content, list):
        block["content"] = [_part_block(part) for part in content]
    elif content:
        block["content"] = content
    data = message.provider_data or {}
    vendor = data.get("anthropic")
    extra: Mapping[str, Any] = vendor if isinstance(vendor, Mapping) else {}
    if data.get("is_error") or extra.get("is_error"):
        block["is_error"] = True
    if extra.get("cache_control") is not None:
        block["cache_control"] = extra["cache_control"]
    return block


def _assistant_content(message: Message, call_ids: list[str]) -> str | list[dict[str, Any]]:
    raw = _preserved_blocks(message)
    if raw is not None and _matches(raw, message):
        return [dict(block) for block in raw]
    blocks: list[dict[str, Any]] = []
    if raw:
        # Edited since it was received: keep the thinking blocks (they must lead the turn), rebuild the rest.
        blocks.extend(dict(b) for b in raw if b.get("type") in ("thinking", "redacted_thinking"))
    content = message.content
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif content:
        blocks.extend(_part_block(part) for part in content)
    for index, call in enumerate(message.tool_calls or ()):
        blocks.append(_tool_use(call, index, call_ids))
    if not blocks:
        return ""
    if len(blocks) == 1 and blocks[0]["type"] == "text" and len(blocks[0]) == 2:
        return str(blocks[0]["text"])
    return blocks


def _preserved_blocks(message: Message) -> list[dict[str, Any]] | None:
    data = message.provider_data
    if not data:
        return None
    vendor = data.get("anthropic")
    if not isinstance(vendor, Mapping):
        return None
    content = vendor.get("content")
    return content if isinstance(content, list) else None


def _matches(raw: list[dict[str, Any]], message: Message) -> bool:
    """True when the preserved blocks still say what the message says (same text, same tool calls)."""
    text = "".join(str(b.get("text", "")) for b in raw if b.get("type") == "text")
    ids = [b.get("id") for b in raw if b.get("type") == "tool_use"]
    return text == message.text and ids == [c.id for c in message.tool_calls or ()]


def _tool_use(call: ToolCall, index: int, call_ids: list[str]) -> dict[str, Any]:
    raw = call.function.arguments
    try:
        arguments = json.loads(raw) if raw and raw.strip() else {}
    except ValueError:
        arguments = {}
    if not isinstance(arguments, dict):
        arguments = {}
    call_id = call.id or f"toolu_spoon_{len(call_ids)}_{index}"
    call_ids.append(call_id)
    return {"type": "tool_use", "id": call_id, "name": call.function.name, "input": arguments}


# -- tools ------------------------------------------------------------------------------------------------


def convert_tools(tools: Sequence[ToolSpec | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Our tool specs as Anthropic tools; Anthropic-native tools (server tools, extra fields) pass through."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        if isinstance(tool, Mapping) and _is_native_tool(tool):
            out.append(dict(tool))
            continue
        spec = tool if isinstance(tool, ToolSpec) else ToolSpec.model_validate(tool)
        converted: dict[str, Any] = {"name": spec.name}
        if spec.description is not None:
            converted["description"] = spec.description
        converted["input_schema"] = spec.parameters
        if spec.strict is not None:
            converted["strict"] = spec.strict
        if spec.cache_control is not None:
            converted["cache_control"] = spec.cache_control
        out.append(converted)
    return out


def _is_native_tool(tool: Mapping[str, Any]) -> bool:
    if "input_schema" in tool:
        return True
    kind = tool.get("type")
    return isinstance(kind, str) and kind not in ("function", "custom") and "function" not in tool


def convert_tool_choice(choice: Any, parallel_tool_calls: bool | None = None) -> dict[str, Any] | None:
    """``auto`` / ``none`` / ``required`` (or ``any``) / a tool name / an OpenAI or Anthropic dict."""
    out: dict[str, Any] | None
    if choice is None:
        out = None
    elif isinstance(choice, str):
        if choice in ("auto", "none"):
            out = {"type": choice}
        elif choice in ("required", "any"):
            out = {"type": "any"}
        else:
            out = {"type": "tool", "name": choice}
    elif isinstance(choice, Mapping):
        if choice.get("type") == "function":
            function = choice.get("function")
            name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
            out = {"type": "tool", "name": name}
        else:
            out = dict(choice)
    else:
        raise ValidationError(f"unsupported tool_choice {choice!r}", provider="anthropic")
    if parallel_tool_calls is False:
        out = {"type": "auto"} if out is None else out
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


# -- options ----------------------------------------------------------------------------------------------


def _thinking(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if value is False or value == 0:
        return {"type": "disabled"}
    if value is True:
        return {"type": "enabled", "budget_tokens": 2048}
    if isinstance(value, int):
        return {"type": "enabled", "budget_tokens": value}
    if value == "adaptive":
        return {"type": "adaptive"}
    raise ValidationError(f"thinking must be a token budget, True/False, 'adaptive' or a dict, not {value!r}",
                          provider="anthropic")


# -- prompt caching ---------------------------------------------------------------------------------------


def apply_auto_cache(body: dict[str, Any]) -> None:
    """Add cache breakpoints to the end of the tools, of the system prompt and of the conversation.

    The caller's own ``cache_control`` marks are kept and counted against the API's limit of four.
    """
    budget = MAX_CACHE_BREAKPOINTS - _count_breakpoints(body)
    tools = body.get("tools")
    if budget > 0 and tools and "cache_control" not in tools[-1]:
        tools[-1] = {**tools[-1], "cache_control": _EPHEMERAL}
        budget -= 1
    system = body.get("system")
    if budget > 0 and system:
        if isinstance(system, str):
            body["system"] = [{"type": "text", "text": system, "cache_control": _EPHEMERAL}]
            budget -= 1
        elif "cache_control" not in system[-1]:
            system[-1] = {**system[-1], "cache_control": _EPHEMERAL}
            budget -= 1
    messages = body.get("messages")
    if budget > 0 and messages:
        last = messages[-1]
        blocks = _as_blocks(last["content"])
        if blocks and "cache_control" not in blocks[-1] and blocks[-1].get("type") not in _UNCACHEABLE:
            blocks = [*blocks[:-1], {**blocks[-1], "cache_control": _EPHEMERAL}]
            messages[-1] = {**last, "content": blocks}


_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})


def _count_breakpoints(body: Mapping[str, Any]) -> int:
    count = 1 if "cache_control" in body else 0
    count += sum(1 for tool in body.get("tools") or () if "cache_control" in tool)
    system = body.get("system")
    if isinstance(system, list):
        count += sum(1 for block in system if "cache_control" in block)
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, list):
            count += sum(1 for block in content if isinstance(block, Mapping) and "cache_control" in block)
    return count
