"""Request side of the OpenAI-compatible wire mapping: our types -> the vendor's JSON body.

Nothing here touches the network or the SDK: requests come out as plain dicts ready for ``json.dumps``, so every
transport (the official SDK over httpx2 or aiohttp, or the native client) shares this module, and the conformance
corpus tests it directly. :func:`build_chat_body`, :func:`messages_to_wire`, :func:`tools_to_wire`,
:func:`tool_choice_to_wire`, :func:`response_format_from`, :func:`build_completion_body`,
:func:`build_embedding_body`; the answer side is :mod:`._decode`, streams :mod:`._stream`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...errors import ValidationError
from ...structured._schema import OutputSchema
from ...types import (
    DocumentPart,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
)
from ._dialect import _ECHO_PROVIDER_DATA, _ROLES, ModelRules, WireDialect

__all__ = [
    "build_chat_body",
    "build_completion_body",
    "build_embedding_body",
    "messages_to_wire",
    "response_format_from",
    "tool_choice_to_wire",
    "tools_to_wire",
]


def _bad(message: str, provider: str | None) -> ValidationError:
    return ValidationError(message, provider=provider)


def _part_obj_to_wire(part: TextPart | ImagePart | DocumentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        out: dict[str, Any] = {"type": "text", "text": part.text}
    elif isinstance(part, ImagePart):
        image: dict[str, Any] = {"url": part.data_url}
        if part.detail:
            image["detail"] = part.detail
        out = {"type": "image_url", "image_url": image}
    else:
        file: dict[str, Any] = {
            "file_data": part.url if part.url is not None else f"data:{part.media_type};base64,{part.data}"
        }
        if part.filename:
            file["filename"] = part.filename
        out = {"type": "file", "file": file}
    if part.cache_control:
        out["cache_control"] = part.cache_control
    return out


def _part_dict_to_wire(part: Mapping[str, Any], provider: str | None) -> Any:
    kind = part.get("type")
    if kind == "image" or kind == "document":
        # Our own loose form of a part: validate it through the model, then map.
        model = ImagePart if kind == "image" else DocumentPart
        try:
            return _part_obj_to_wire(model.model_validate(part))
        except Exception as exc:
            raise _bad(f"invalid {kind} part: {exc}", provider) from None
    if kind == "input_text":
        return {"type": "text", "text": part.get("text", "")}
    # text, image_url, file, input_audio, refusal, and parts we do not model: already OpenAI wire format.
    return part


def _content_to_wire(content: Any, provider: str | None) -> Any:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append({"type": "text", "text": part})
            elif isinstance(part, (TextPart, ImagePart, DocumentPart)):
                out.append(_part_obj_to_wire(part))
            elif isinstance(part, Mapping):
                out.append(_part_dict_to_wire(part, provider))
            else:
                raise _bad(f"unsupported content part of type {type(part).__name__}", provider)
        return out
    raise _bad(f"message content must be a string or a list of parts, not {type(content).__name__}", provider)


def _tool_call_to_wire(call: Any, provider: str | None) -> Any:
    if isinstance(call, ToolCall):
        return {"id": call.id, "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments}}
    if not isinstance(call, Mapping):
        raise _bad(f"a tool call must be a ToolCall or a dict, not {type(call).__name__}", provider)
    fn = call.get("function")
    if isinstance(fn, Mapping):
        name, args = fn.get("name"), fn.get("arguments")
        if isinstance(args, str) and call.get("type") == "function" and "provider_data" not in call:
            return call if isinstance(call, dict) else dict(call)  # already wire format
    else:  # the flat form {"id", "name", "arguments"}
        name, args = call.get("name"), call.get("arguments")
    if not isinstance(args, str):
        args = "{}" if args is None else json.dumps(args, ensure_ascii=False)
    return {"id": call.get("id"), "type": "function", "function": {"name": name, "arguments": args}}


def _message_obj_to_wire(message: Message, dialect: WireDialect) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role}
    content = message.content
    if isinstance(content, list):
        out["content"] = [_part_obj_to_wire(p) for p in content]
    elif content is not None:
        out["content"] = content
    elif not message.tool_calls:
        out["content"] = ""  # an assistant turn with tool calls may omit content; every other turn needs it
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [_tool_call_to_wire(c, dialect.provider) for c in message.tool_calls]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.role == "assistant":
        if message.reasoning and dialect.reasoning_field:
            out[dialect.reasoning_field] = message.reasoning
        if message.provider_data:
            for key in _ECHO_PROVIDER_DATA:
                if key in message.provider_data:
                    out[key] = message.provider_data[key]
    return out


def _message_dict_to_wire(message: Mapping[str, Any], dialect: WireDialect) -> dict[str, Any]:
    provider = dialect.provider
    role = message.get("role")
    if role not in _ROLES:
        raise _bad(f"message role must be one of {sorted(_ROLES)}, not {role!r}", provider)
    out = dict(message)
    content = out.get("content")
    if content is not None and not isinstance(content, str):
        if role == "tool" and not isinstance(content, list):
            out["content"] = json.dumps(content, ensure_ascii=False)
        else:
            out["content"] = _content_to_wire(content, provider)
    if role == "tool" and not out.get("tool_call_id"):
        raise _bad("a 'tool' message needs 'tool_call_id' (the id of the call it answers)", provider)
    calls = out.get("tool_calls")
    if calls:
        out["tool_calls"] = [_tool_call_to_wire(c, provider) for c in calls]
    if "reasoning" in out or "provider_data" in out:
        reasoning = out.pop("reasoning", None)
        data = out.pop("provider_data", None)
        if role == "assistant":
            if reasoning and dialect.reasoning_field and dialect.reasoning_field not in out:
                out[dialect.reasoning_field] = reasoning
            if isinstance(data, Mapping):
                for key in _ECHO_PROVIDER_DATA:
                    if key in data and key not in out:
                        out[key] = data[key]
    return out


def messages_to_wire(
    messages: str | Message | Mapping[str, Any] | Iterable[Message | Mapping[str, Any]],
    dialect: WireDialect,
    rules: ModelRules | None = None,
) -> list[dict[str, Any]]:
    """OpenAI ``messages`` from our messages or dicts.

    Dicts are taken as OpenAI wire format (with our loose part forms and ``reasoning``/``provider_data`` keys
    translated), so parts and fields we do not model (``input_audio``, ``file_id`` files, vendor extensions) pass
    through unchanged; :class:`Message` objects are mapped field by field. A bare string is one user turn.
    """
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, (Message, Mapping)):
        messages = [messages]
    out = []
    for message in messages:
        if isinstance(message, Message):
            out.append(_message_obj_to_wire(message, dialect))
        elif isinstance(message, Mapping):
            out.append(_message_dict_to_wire(message, dialect))
        elif isinstance(message, str):
            out.append({"role": "user", "content": message})
        else:
            raise _bad(f"a message must be a Message or a dict, not {type(message).__name__}", dialect.provider)
    if rules is not None and rules.system_role:
        for item in out:
            if item["role"] in ("system", "developer"):
                item["role"] = rules.system_role
    return out


# -- tools and structured output ----------------------------------------------------------------------------


def tools_to_wire(tools: Sequence[Any], provider: str | None = None) -> list[dict[str, Any]]:
    """OpenAI ``tools`` from :class:`ToolSpec` objects or dicts (flat, OpenAI or Anthropic form).

    Dicts already in OpenAI's ``{"type": "function", "function": {...}}`` form, and non-function tools, are sent
    as given.
    """
    out = []
    for tool in tools:
        if isinstance(tool, ToolSpec):
            out.append(tool.to_openai())
        elif isinstance(tool, Mapping):
            kind = tool.get("type")
            if (kind == "function" and isinstance(tool.get("function"), Mapping)) or (
                kind is not None and kind != "function"
            ):
                out.append(dict(tool))
            elif kind is None and isinstance(tool.get("function"), Mapping) and "name" not in tool:
                out.append({"type": "function", **tool})  # Mistral's clients leave the default type out
            else:
                try:
                    out.append(ToolSpec.model_validate(tool).to_openai())
                except Exception as exc:
                    raise _bad(f"invalid tool description: {exc}", provider) from None
        else:
            raise _bad(f"a tool must be a ToolSpec or a dict, not {type(tool).__name__}", provider)
    return out


def tool_choice_to_wire(choice: Any, provider: str | None = None) -> Any:
    """OpenAI ``tool_choice``: ``"auto"``/``"none"``/``"required"``, a function name, or a dict.

    Anthropic's spellings are accepted too (``{"type": "any"}`` -> ``"required"``, ``{"type": "tool", "name"}``).
    """
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            return choice
        if choice == "any":
            return "required"
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, ToolSpec):
        return {"type": "function", "function": {"name": choice.name}}
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        if kind == "function" and isinstance(choice.get("function"), Mapping):
            return dict(choice)
        if kind in ("auto", "none", "required"):
            return kind
        if kind == "any":
            return "required"
        name = choice.get("name")
        if isinstance(name, str) and kind in (None, "tool", "function"):
            return {"type": "function", "function": {"name": name}}
        if kind is not None:
            return dict(choice)  # e.g. {"type": "allowed_tools", ...}: newer OpenAI forms, sent as given
    raise _bad(f"unsupported tool_choice {choice!r}", provider)


def response_format_from(
    response_format: Any = None, *, json_mode: bool = False, json_schema: Any = None
) -> dict[str, Any] | None:
    """OpenAI ``response_format`` from ``response_format=``, ``json=True`` or ``json_schema=``.

    ``json_schema`` may be a JSON schema, OpenAI's ``{"name", "schema", "strict"}`` wrapper, or a pydantic model
    class; ``response_format`` may be OpenAI's dict, ``"json"``/``"json_object"``/``"text"``, or a pydantic model
    class.
    """
    if response_format is not None:
        if isinstance(response_format, OutputSchema):
            return response_format.openai()
        if isinstance(response_format, Mapping):
            return dict(response_format)
        if isinstance(response_format, str):
            kind = "json_object" if response_format in ("json", "json_object") else response_format
            return {"type": kind}
        return response_format_from(json_schema=response_format)
    if json_schema is not None:
        schema: Any = json_schema
        name = "response"
        strict: bool | None = None
        if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
            name = schema.__name__
            schema = schema.model_json_schema()
        elif isinstance(schema, Mapping) and isinstance(schema.get("schema"), Mapping):
            name = schema.get("name") or name
            strict = schema.get("strict")
            schema = schema["schema"]
        elif isinstance(schema, Mapping):
            name = str(schema.get("title") or name)
        spec: dict[str, Any] = {"name": name, "schema": dict(schema)}
        if strict is not None:
            spec["strict"] = strict
        return {"type": "json_schema", "json_schema": spec}
    if json_mode:
        return {"type": "json_object"}
    return None


# -- request bodies -----------------------------------------------------------------------------------------

#: Per-call keywords consumed while building the body (never sent as they are).
_BODY_CONTROL = frozenset({"json", "json_schema", "include_usage", "stream", "messages"})


def build_chat_body(
    messages: list[dict[str, Any]],
    model: str,
    params: Mapping[str, Any],
    *,
    dialect: WireDialect,
    rules: ModelRules,
    stream: bool = False,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of one chat request.

    ``defaults`` (configuration: ``max_tokens``, ``temperature``, ``extra_body``...) apply under ``params`` (the
    call's keywords); a ``None`` value in ``params`` removes a default. ``max_tokens`` becomes
    ``max_completion_tokens`` for reasoning models, a non-default temperature/top_p is dropped for them, and
    keywords this function does not know are sent as they are (vendor extensions such as ``top_k``,
    ``provider``, ``reasoning``), as is everything in ``extra_body``.
    """
    body: dict[str, Any] = {"model": model, "messages": messages}
    merged = {**defaults, **params} if defaults else params
    extra = merged.get("extra_body")
    for key, value in merged.items():
        if value is None or key in _BODY_CONTROL or key == "extra_body" or key == "model":
            continue
        if key == "max_tokens":
            body[rules.max_tokens_param] = value
        elif key == "temperature" or key == "top_p":
            if not rules.fixed_sampling or value == 1:
                body[key] = value
        elif key == "tools":
            if value:
                body["tools"] = tools_to_wire(value, dialect.provider)
        elif key == "tool_choice":
            body["tool_choice"] = tool_choice_to_wire(value, dialect.provider)
        elif key == "response_format":
            if isinstance(value, OutputSchema) and not dialect.json_schema:
                body["response_format"] = {"type": "json_object"}
                body["messages"] = [{"role": "system", "content": value.instruction()}, *messages]
            else:
                body["response_format"] = response_format_from(value)
        else:
            body[key] = value
    if "response_format" not in body:
        json_schema = merged.get("json_schema")
        if json_schema is not None or merged.get("json"):
            body["response_format"] = response_format_from(json_mode=bool(merged.get("json")),
                                                           json_schema=json_schema)
    if stream:
        body["stream"] = True
        include_usage = merged.get("include_usage", dialect.stream_usage)
        if include_usage and "stream_options" not in body:
            body["stream_options"] = {"include_usage": True}
    if extra:
        body.update(extra)
    return body


def build_completion_body(
    prompt: str | list[str],
    model: str,
    params: Mapping[str, Any],
    *,
    stream: bool = False,
    stream_usage: bool = True,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of one legacy ``/completions`` request (same keyword rules as :func:`build_chat_body`)."""
    body: dict[str, Any] = {"model": model, "prompt": prompt}
    merged = {**defaults, **params} if defaults else params
    for key, value in merged.items():
        if value is None or key in _BODY_CONTROL or key in ("extra_body", "model", "prompt"):
            continue
        body[key] = value
    if stream:
        body["stream"] = True
        if merged.get("include_usage", stream_usage) and "stream_options" not in body:
            body["stream_options"] = {"include_usage": True}
    extra = merged.get("extra_body")
    if extra:
        body.update(extra)
    return body


def build_embedding_body(
    inputs: str | list[str], model: str, params: Mapping[str, Any], *, dialect: WireDialect
) -> dict[str, Any]:
    """The JSON body of one ``/embeddings`` request; ``dimensions`` and ``encoding_format`` pass through."""
    body: dict[str, Any] = {"model": model, "input": inputs}
    encoding = params.get("encoding_format", dialect.embedding_encoding)
    if encoding is not None:
        body["encoding_format"] = encoding
    for key, value in params.items():
        if value is None or key in ("extra_body", "model", "input", "encoding_format", "batch_size"):
            continue
        body[key] = value
    extra = params.get("extra_body")
    if extra:
        body.update(extra)
    return body

