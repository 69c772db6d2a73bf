"""Gemini request mapping: our messages, tools and call options -> the ``generateContent`` REST JSON (camelCase).

Pure functions over plain data (no SDK import), shared by every transport. Rules:

* the whole history is sent: ``system``/``developer`` -> ``systemInstruction``, ``assistant`` -> role ``model``;
* assistant tool calls -> ``functionCall`` parts, tool results -> ``functionResponse`` parts (in a user turn)
  matched to their call by id (the call's name is looked up there); consecutive turns of one role are merged;
* a model turn that came from a response is sent back exactly (thought signatures and all) from
  ``Message.provider_data["gemini"]["parts"]`` unless edited since; otherwise thought signatures are taken
  from ``ToolCall.provider_data["gemini"]`` and ``Message.provider_data["gemini"]``.
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
from ._schema import to_gemini_schema

__all__ = [
    "KNOWN_KWARGS",
    "SYNTHETIC_PREFIX",
    "CallOptions",
    "RequestDefaults",
    "build_embed_request",
    "build_request",
    "convert_messages",
    "convert_tool_choice",
    "convert_tools",
    "json_schema_of",
    "model_path",
]

PROVIDER = "gemini"
#: Prefix of the ids we make up for function calls that came without one (the API rarely sends ids); such
#: ids are never sent back, as Gemini matches id-less calls and responses by order and name.
SYNTHETIC_PREFIX = "gemini-call-"

#: Per-call keyword arguments this provider understands (declared in :mod:`spoon_llm.call_settings`).
KNOWN_KWARGS = ACCEPTED_KEYS["gemini"]
_SCHEMA_MODES = ("openapi", "json_schema")
# Extension -> MIME type for URLs given without one (``mimetypes`` reads files on first use: not on the loop).
_MIME_BY_EXTENSION = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
    "heic": "image/heic", "heif": "image/heif", "pdf": "application/pdf", "txt": "text/plain",
    "mp3": "audio/mp3", "wav": "audio/wav", "mp4": "video/mp4",
}


@dataclass(frozen=True)
class RequestDefaults:
    """Per-deployment defaults, taken once from the configuration."""

    model: str
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    schema_mode: str = "openapi"
    extra_body: Mapping[str, Any] = field(default_factory=dict)


def model_path(model: str) -> str:
    """``models/<id>`` (tuned models and full resource names are kept as given)."""
    return model if "/" in model else f"models/{model}"


def build_request(
    messages: Sequence[Message],
    kwargs: Mapping[str, Any],
    defaults: RequestDefaults,
) -> tuple[dict[str, Any], CallOptions]:
    """The ``generateContent`` body for ``messages`` and the call's keyword arguments, plus transport options.

    The same body serves ``streamGenerateContent``. Raises :class:`~spoon_llm.errors.ValidationError` for
    arguments this provider does not understand and for tool schemas it cannot express.
    """
    kwargs = settings_for(kwargs, "gemini", provider=PROVIDER)
    get = kwargs.get
    model = get("model") or defaults.model
    schema_mode = get("schema_mode") or defaults.schema_mode
    if schema_mode not in _SCHEMA_MODES:
        raise ValidationError(f"schema_mode must be one of {_SCHEMA_MODES}, not {schema_mode!r}", provider=PROVIDER)
    system, contents = convert_messages(messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = get("tools")
    if tools:
        body["tools"] = convert_tools(tools, schema_mode=schema_mode)
    tool_config = convert_tool_choice(get("tool_choice"))
    if tool_config is not None:
        body["toolConfig"] = tool_config
    safety = get("safety_settings")
    if safety:
        body["safetySettings"] = list(safety)
    if get("cached_content"):
        body["cachedContent"] = get("cached_content")

    config: dict[str, Any] = {}
    temperature = get("temperature", defaults.temperature)
    if temperature is not None:
        config["temperature"] = temperature
    top_p = get("top_p", defaults.top_p)
    if top_p is not None:
        config["topP"] = top_p
    if get("top_k") is not None:
        config["topK"] = get("top_k")
    max_tokens = get("max_tokens") or get("max_completion_tokens") or defaults.max_tokens
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = get("stop", get("stop_sequences"))
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    for ours, theirs in (("seed", "seed"), ("presence_penalty", "presencePenalty"),
                         ("frequency_penalty", "frequencyPenalty")):
        if get(ours) is not None:
            config[theirs] = get(ours)
    candidates = get("candidate_count", get("n"))
    if candidates is not None and candidates != 1:
        config["candidateCount"] = candidates
    modalities = get("response_modalities")
    if modalities:
        config["responseModalities"] = list(modalities)
    response_format = get("response_format")
    schema, json_mode = json_schema_of(response_format, get("json"), get("json_schema"), "gemini")
    if json_mode:
        config["responseMimeType"] = "application/json"
        if schema is not None:
            # A typed request always uses responseJsonSchema: $defs, anyOf and maps need no conversion there.
            if schema_mode == "json_schema" or isinstance(response_format, OutputSchema):
                config["responseJsonSchema"] = schema
            else:
                config["responseSchema"] = to_gemini_schema(schema, where="response schema")
    thinking = _thinking(get("thinking"), get("reasoning_effort"))
    if thinking is not None:
        config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config
    if defaults.extra_body:
        _merge(body, defaults.extra_body)
    extra_body = get("extra_body")
    if extra_body:
        _merge(body, extra_body)
    headers = dict(get("extra_headers") or {}) or None
    return body, CallOptions(model=model, timeout=get("timeout"), headers=headers)


def _merge(body: dict[str, Any], extra: Mapping[str, Any]) -> None:
    # generationConfig is nested: merge it field by field so extra_body can add one knob without losing ours.
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value


# -- messages ---------------------------------------------------------------------------------------------


def convert_messages(messages: Sequence[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Our messages as Gemini ``systemInstruction`` parts and merged ``contents``."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    calls: dict[str, ToolCall] = {}
    for message in messages:
        if message.role == "system" or message.role == "developer":
            system.extend(_system_parts(message))
            continue
        role = "user"
        if message.role == "tool":
            parts = [_function_response(message, calls)]
        elif message.role == "assistant":
            parts = _model_parts(message)
            for call in message.tool_calls or ():
                if call.id:
                    calls[call.id] = call
            role = "model"
        else:
            parts = _user_parts(message)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _system_parts(message: Message) -> list[dict[str, Any]]:
    content = message.content
    if not content:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    return [_part(part) for part in content]


def _user_parts(message: Message) -> list[dict[str, Any]]:
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return [_part(part) for part in content]


def _part(part: TextPart | ImagePart | DocumentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    media_type = part.media_type
    if part.data is not None:
        return {"inlineData": {"mimeType": media_type or "image/png", "data": part.data}}
    url = part.url or ""
    if url.startswith("data:") and ";base64," in url:
        header, data = url.split(",", 1)
        return {"inlineData": {"mimeType": header[5:].split(";", 1)[0] or media_type or "image/png", "data": data}}
    if not media_type:
        extension = url.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
        media_type = _MIME_BY_EXTENSION.get(extension, "application/octet-stream")
    return {"fileData": {"mimeType": media_type, "fileUri": url}}


def _vendor_data(data: Mapping[str, Any] | None) -> Mapping[str, Any]:
    vendor = data.get(PROVIDER) if data else None
    return vendor if isinstance(vendor, Mapping) else {}


def _model_parts(message: Message) -> list[dict[str, Any]]:
    vendor = _vendor_data(message.provider_data)
    preserved = vendor.get("parts")
    if isinstance(preserved, list) and _matches(preserved, message):
        return [dict(part) for part in preserved]
    parts: list[dict[str, Any]] = []
    content = message.content
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
    elif content:
        parts.extend(_part(part) for part in content)
    signature = vendor.get("thoughtSignature")
    if signature and parts:
        parts[-1]["thoughtSignature"] = signature
    for call in message.tool_calls or ():
        parts.append(_function_call(call))
    return parts


def _matches(parts: list[Any], message: Message) -> bool:
    """True when the preserved parts still say what the message says (same text, same calls)."""
    text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping) and not p.get("thought"))
    names = [p["functionCall"].get("name") for p in parts if isinstance(p, Mapping) and "functionCall" in p]
    return text == message.text and names == [c.function.name for c in message.tool_calls or ()]


def _function_call(call: ToolCall) -> dict[str, Any]:
    vendor = _vendor_data(call.provider_data)
    raw = call.function.arguments
    try:
        arguments = json.loads(raw) if raw and raw.strip() else {}
    except ValueError:
        arguments = {}
    function: dict[str, Any] = {"name": call.function.name, "args": arguments if isinstance(arguments, dict) else {}}
    if call.id and not call.id.startswith(SYNTHETIC_PREFIX):
        function["id"] = call.id
    part: dict[str, Any] = {"functionCall": function}
    if vendor.get("thoughtSignature"):
        part["thoughtSignature"] = vendor["thoughtSignature"]
    return part


def _function_response(message: Message, calls: Mapping[str, ToolCall]) -> dict[str, Any]:
    call = calls.get(message.tool_call_id or "")
    name = message.name or (call.function.name if call is not None else None)
    if not name:
        raise ValidationError(
            f"tool result {message.tool_call_id!r} answers no earlier tool call and has no name; Gemini needs the "
            "function name: pass name=... on the tool message",
            provider=PROVIDER,
        )
    response: dict[str, Any] = {"name": name, "response": _result_object(message)}
    call_id = message.tool_call_id
    if call_id and not call_id.startswith(SYNTHETIC_PREFIX):
        response["id"] = call_id
    return {"functionResponse": response}


def _result_object(message: Message) -> dict[str, Any]:
    text = message.text
    try:
        value = json.loads(text) if text.strip() else None
    except ValueError:
        value = text
    if isinstance(value, dict):
        return value
    # functionResponse.response must be an object: wrap anything else.
    return {"result": value}


# -- tools ------------------------------------------------------------------------------------------------


def convert_tools(tools: Sequence[ToolSpec | Mapping[str, Any]], *,
                  schema_mode: str = "openapi") -> list[dict[str, Any]]:
    """Our tools as one ``functionDeclarations`` tool; Gemini-native tools (``googleSearch``...) pass through."""
    declarations: list[dict[str, Any]] = []
    native: list[dict[str, Any]] = []
    for tool in tools:
        if isinstance(tool, Mapping) and _is_native_tool(tool):
            native.append(dict(tool))
            continue
        spec = tool if isinstance(tool, ToolSpec) else ToolSpec.model_validate(tool)
        declaration: dict[str, Any] = {"name": spec.name}
        if spec.description is not None:
            declaration["description"] = spec.description
        if schema_mode == "json_schema":
            declaration["parametersJsonSchema"] = spec.parameters
        else:
            declaration["parameters"] = to_gemini_schema(spec.parameters, where=f"tool {spec.name!r}")
        declarations.append(declaration)
    out = [{"functionDeclarations": declarations}] if declarations else []
    return out + native


def _is_native_tool(tool: Mapping[str, Any]) -> bool:
    return "name" not in tool and "function" not in tool


def convert_tool_choice(choice: Any) -> dict[str, Any] | None:
    """``auto`` / ``none`` / ``required`` (or ``any``) / a tool name / a dict -> ``toolConfig``."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice in ("auto", "none"):
            return {"functionCallingConfig": {"mode": choice.upper()}}
        if choice in ("required", "any"):
            return {"functionCallingConfig": {"mode": "ANY"}}
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice]}}
    if isinstance(choice, Mapping):
        if not choice.keys() & {"type", "function", "name"}:
            return dict(choice)  # already a Gemini toolConfig (functionCallingConfig, ...)
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
        if name:
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
        kind = choice.get("type")
        if isinstance(kind, str):
            return convert_tool_choice(kind)
    raise ValidationError(f"unsupported tool_choice {choice!r}", provider=PROVIDER)


# -- options ----------------------------------------------------------------------------------------------


def _thinking(value: Any, effort: Any) -> dict[str, Any] | None:
    config: dict[str, Any] | None
    if value is None:
        config = None
    elif isinstance(value, Mapping):
        config = dict(value)
    elif value is False:
        config = {"thinkingBudget": 0}
    elif value is True:
        config = {"includeThoughts": True}
    elif isinstance(value, int):
        config = {"thinkingBudget": value, "includeThoughts": value != 0}
    else:
        raise ValidationError(f"thinking must be a token budget, True/False or a dict, not {value!r}",
                              provider=PROVIDER)
    if effort:
        config = {**(config or {}), "thinkingLevel": str(effort)}
    return config


# -- embeddings -------------------------------------------------------------------------------------------


def build_embed_request(model: str, texts: Sequence[str], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``batchEmbedContents`` body for ``texts`` (``task_type``, ``dimensions``, ``title`` optional)."""
    path = model_path(model)
    extra: dict[str, Any] = {}
    task = kwargs.get("task_type")
    if task:
        extra["taskType"] = str(task).upper()
    dimensions = kwargs.get("dimensions", kwargs.get("output_dimensionality"))
    if dimensions:
        extra["outputDimensionality"] = int(dimensions)
    if kwargs.get("title"):
        extra["title"] = kwargs["title"]
    return {"requests": [{"model": path, "content": {"parts": [{"text": text}]}, **extra} for text in texts]}
