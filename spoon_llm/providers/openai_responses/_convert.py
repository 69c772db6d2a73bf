"""Responses API request mapping: our messages, tools and call options -> the ``POST /responses`` JSON body.

Pure functions over plain data (no SDK import), shared by every transport. Rules:

* ``system``/``developer``/``user`` messages become ``{"role", "content"}`` input messages (a string, or
  ``input_text`` / ``input_image`` / ``input_file`` parts); ``instructions=`` is a separate per-call keyword;
* an assistant message becomes an ``assistant`` message plus one ``function_call`` item per tool call; when it
  came from a response, the response's own output items (reasoning with its encrypted content, hosted-tool
  calls, message ids and phases) are sent back verbatim from ``provider_data["openai_responses"]["items"]``
  (plain ``reasoning`` text of another vendor's turn is not sent: the API takes reasoning back only as its items);
* a tool result becomes a ``function_call_output`` item (a string, or a list of parts for images and files);
* any message carrying ``provider_data["openai_responses"]["items"]`` is sent as those items, which is how
  input shapes our schema lacks (``file_id`` inputs, developer messages with tools...) travel;
* function tools go out in the Responses API's flat shape (``{"type": "function", "name", "parameters"}``),
  built-in tools (``web_search``, ``code_interpreter``, ``tool_search``...) as given; ``response_format`` /
  ``json`` / ``json_schema`` become ``text.format``; ``max_tokens`` becomes ``max_output_tokens``;
  ``reasoning_effort`` becomes ``reasoning.effort``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...call_settings import ACCEPTED_KEYS, settings_for
from ...errors import ValidationError
from ...types import DocumentPart, ImagePart, Message, TextPart, ToolCall, ToolSpec
from .._common import CallOptions
from ..openai._convert import response_format_from
from ..openai._dialect import model_rules

__all__ = [
    "KNOWN_KWARGS",
    "PROVIDER",
    "RequestDefaults",
    "build_request",
    "convert_messages",
    "convert_tool_choice",
    "convert_tools",
    "text_format",
]

PROVIDER = "openai_responses"

#: Per-call keyword arguments this provider understands (declared in :mod:`spoon_llm.call_settings`).
KNOWN_KWARGS = ACCEPTED_KEYS["openai_responses"]
#: Responses API fields a call may set directly; sent as given.
_PASSTHROUGH = frozenset({
    "instructions", "include", "background", "store", "previous_response_id", "conversation", "metadata", "user",
    "parallel_tool_calls", "truncation", "service_tier", "prompt", "prompt_cache_key", "prompt_cache_retention",
    "safety_identifier", "top_logprobs", "max_tool_calls", "stream_options", "context_management",
})


@dataclass(frozen=True)
class RequestDefaults:
    """Per-deployment defaults, taken once from the configuration."""

    model: str
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)


def _bad(message: str) -> ValidationError:
    return ValidationError(message, provider=PROVIDER)


def build_request(
    messages: Sequence[Message],
    kwargs: Mapping[str, Any],
    defaults: RequestDefaults,
    *,
    stream: bool = False,
) -> tuple[dict[str, Any], CallOptions]:
    """The ``/responses`` body for ``messages`` and the call's keyword arguments, plus transport options.

    ``None`` means "do not send" (also for a configured default). Raises
    :class:`~spoon_llm.errors.ValidationError` for arguments this provider does not understand.
    """
    kwargs = settings_for(kwargs, "openai_responses", provider=PROVIDER)
    get = kwargs.get
    if get("stop"):
        raise _bad("the Responses API has no stop sequences: drop stop=... or use the openai provider's chat API")
    model = get("model") or defaults.model
    rules = model_rules(model)
    body: dict[str, Any] = {"model": model, "input": convert_messages(messages)}
    for key, value in kwargs.items():  # the call's order: a body built twice the same way is the same JSON
        if key in _PASSTHROUGH and value is not None:
            body[key] = value
    max_tokens = _first(kwargs, ("max_output_tokens", "max_tokens", "max_completion_tokens"), defaults.max_tokens)
    if max_tokens is not None:
        body["max_output_tokens"] = max_tokens
    for key, default in (("temperature", defaults.temperature), ("top_p", defaults.top_p)):
        value = kwargs[key] if key in kwargs else default
        # Reasoning models accept only the default sampling (1); a configured default must not break them.
        if value is not None and (not rules.fixed_sampling or value == 1):
            body[key] = value
    reasoning = dict(get("reasoning") or {})
    if get("reasoning_effort") is not None:
        reasoning["effort"] = get("reasoning_effort")
    if reasoning:
        body["reasoning"] = reasoning
    text = dict(get("text") or {})
    fmt = text_format(get("response_format"), bool(get("json")), get("json_schema"))
    if fmt is not None:
        text["format"] = fmt
    if text:
        body["text"] = text
    tools = get("tools")
    if tools:
        body["tools"] = convert_tools(tools)
    if get("tool_choice") is not None:
        body["tool_choice"] = convert_tool_choice(get("tool_choice"))
    if stream:
        body["stream"] = True
    if defaults.extra_body:
        body.update(defaults.extra_body)
    extra_body = get("extra_body")
    if extra_body:
        body.update(extra_body)
    headers = dict(get("extra_headers") or {}) or None
    return body, CallOptions(model=model, timeout=get("timeout"), headers=headers)


def _first(kwargs: Mapping[str, Any], keys: Sequence[str], default: Any) -> Any:
    for key in keys:
        if key in kwargs:
            return kwargs[key]
    return default


# -- messages ---------------------------------------------------------------------------------------------


def _raw_items(message: Message) -> list[dict[str, Any]] | None:
    data = message.provider_data
    vendor = data.get(PROVIDER) if data else None
    items = vendor.get("items") if isinstance(vendor, Mapping) else None
    return [dict(item) for item in items] if isinstance(items, list) else None


def _part(part: TextPart | ImagePart | DocumentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, ImagePart):
        image: dict[str, Any] = {"type": "input_image", "image_url": part.data_url}
        if part.detail:
            image["detail"] = part.detail
        return image
    out: dict[str, Any] = {"type": "input_file"}
    if part.url is not None:
        out["file_url"] = part.url
    else:
        out["file_data"] = f"data:{part.media_type};base64,{part.data}"
    if part.filename:
        out["filename"] = part.filename
    return out


def _content(message: Message) -> Any:
    content = message.content
    if isinstance(content, list):
        return [_part(p) for p in content]
    return content or ""


def _function_call(call: ToolCall) -> dict[str, Any]:
    if not call.id:
        raise _bad(f"tool call {call.function.name!r} has no id: the Responses API pairs results by call_id")
    return {"type": "function_call", "call_id": call.id, "name": call.function.name,
            "arguments": call.function.arguments}


def convert_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Our messages as Responses API ``input`` items."""
    items: list[dict[str, Any]] = []
    for message in messages:
        raw = _raw_items(message)
        if raw is not None:
            items.extend(raw)
            continue
        role = message.role
        if role == "tool":
            content = message.content
            output: Any = [_part(p) for p in content] if isinstance(content, list) else (content or "")
            items.append({"type": "function_call_output", "call_id": message.tool_call_id, "output": output})
        elif role == "assistant":
            text = message.text
            if text:
                items.append({"role": "assistant", "content": text})
            items.extend(_function_call(call) for call in message.tool_calls or ())
        else:
            items.append({"role": role, "content": _content(message)})
    return items


# -- tools, tool choice, output format --------------------------------------------------------------------


def _flat_function(spec: ToolSpec) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "function", "name": spec.name}
    if spec.description is not None:
        tool["description"] = spec.description
    tool["parameters"] = spec.parameters
    if spec.strict is not None:
        tool["strict"] = spec.strict
    return tool


def convert_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """Responses API ``tools`` from :class:`ToolSpec` objects or dicts.

    Function tools are sent flat; a dict already flat (``{"type": "function", "name": ...}``, possibly with
    fields such as ``defer_loading``) and every built-in tool (any other ``type``) are sent as given; Chat
    Completions' nested form and Anthropic's ``input_schema`` form are converted.
    """
    out: list[dict[str, Any]] = []
    for tool in tools:
        if isinstance(tool, ToolSpec):
            out.append(_flat_function(tool))
            continue
        if not isinstance(tool, Mapping):
            raise _bad(f"a tool must be a ToolSpec or a dict, not {type(tool).__name__}")
        kind = tool.get("type")
        if (kind == "function" and "name" in tool) or (kind is not None and kind != "function"):
            out.append(dict(tool))
            continue
        try:
            out.append(_flat_function(ToolSpec.model_validate(tool)))
        except Exception as exc:
            raise _bad(f"invalid tool description: {exc}") from None
    return out


def convert_tool_choice(choice: Any) -> Any:
    """Responses API ``tool_choice``: ``auto``/``none``/``required``, a function name, or a dict.

    Chat Completions' ``{"type": "function", "function": {"name"}}`` and Anthropic's ``{"type": "any"}`` /
    ``{"type": "tool", "name"}`` are converted; other dicts (``allowed_tools``, built-in tool types) go as given.
    """
    if isinstance(choice, ToolSpec):
        return {"type": "function", "name": choice.name}
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            return choice
        if choice == "any":
            return "required"
        return {"type": "function", "name": choice}
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        inner = choice.get("function")
        if kind == "function" and isinstance(inner, Mapping):
            return {"type": "function", "name": inner.get("name")}
        if kind in ("auto", "none", "required"):
            return kind
        if kind == "any":
            return "required"
        if kind == "tool" and isinstance(choice.get("name"), str):
            return {"type": "function", "name": choice["name"]}
        if kind is not None:
            return dict(choice)
    raise _bad(f"unsupported tool_choice {choice!r}")


def text_format(response_format: Any, json_mode: bool, json_schema: Any) -> dict[str, Any] | None:
    """``text.format`` from ``response_format`` (Chat Completions' shape), ``json=True`` or ``json_schema=``.

    A ``response_format`` already in the Responses API's flat shape (``{"type": "json_schema", "name",
    "schema"}``) is sent as given.
    """
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema" \
            and "schema" in response_format:
        return dict(response_format)
    chat = response_format_from(response_format, json_mode=json_mode, json_schema=json_schema)
    if chat is None:
        return None
    if chat.get("type") == "json_schema":
        spec = chat.get("json_schema")
        if not isinstance(spec, Mapping):
            raise _bad("response_format of type json_schema needs a 'json_schema' object")
        return {"type": "json_schema", **spec}
    return dict(chat)

