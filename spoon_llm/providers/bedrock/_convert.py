"""Bedrock request mapping: our messages, tools and call options -> a Converse (or InvokeModel) JSON body.

Pure functions over plain data, so the conformance tests and every caller share them. Converse rules:

* ``system``/``developer`` messages become ``system`` text blocks, in order;
* tool results become ``toolResult`` blocks in a user turn; consecutive turns of one role are merged (Converse
  requires alternating roles);
* a part's ``cache_control`` (Anthropic's spelling of a cache breakpoint) becomes a ``cachePoint`` block after it,
  on system blocks, content and tools alike;
* images and documents travel as base64 ``bytes`` (or an ``s3://`` location); a document without a file name is
  named ``Document <n>``, as Bedrock requires a unique name;
* an assistant turn that came from a response is sent back exactly (reasoning blocks with their signatures,
  redacted reasoning, server-tool blocks) from ``Message.provider_data["bedrock"]["content"]``, unless edited
  since; a user turn carrying raw blocks our schema lacks (video, guard content...) is sent as given too.

InvokeModel bodies for Anthropic models are the Messages API body of :mod:`..anthropic._convert`, without
``model``/``stream`` (they are in the path) and with ``anthropic_version: bedrock-2023-05-31``.
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
from ..anthropic._convert import RequestDefaults as AnthropicDefaults
from ..anthropic._convert import build_request as anthropic_request

__all__ = ["BEDROCK_ANTHROPIC_VERSION", "KNOWN_KWARGS", "RequestDefaults", "build_converse", "build_invoke",
           "convert_messages", "convert_tools"]

PROVIDER = "bedrock"
#: The ``anthropic_version`` InvokeModel requires in Anthropic-format bodies.
BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
_CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}

#: Per-call keyword arguments the Converse path understands (declared in :mod:`spoon_llm.call_settings`).
KNOWN_KWARGS = ACCEPTED_KEYS["bedrock"]
_HINT = "extra_body={'additionalModelRequestFields': {...}} (Converse) or extra_body={...} (invoke)"
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                  "image/webp": "webp"}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf", "text/plain": "txt", "text/csv": "csv", "text/html": "html", "text/markdown": "md",
    "application/msword": "doc", "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}


@dataclass(frozen=True)
class RequestDefaults:
    """Per-deployment defaults, taken once from the configuration."""

    model: str
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)


def build_converse(messages: Sequence[Message], kwargs: Mapping[str, Any], defaults: RequestDefaults
                   ) -> tuple[dict[str, Any], CallOptions]:
    """The Converse / ConverseStream body for ``messages`` and the call's keyword arguments.

    Raises :class:`~spoon_llm.errors.ValidationError` for arguments Converse cannot express.
    """
    kwargs = settings_for(kwargs, "bedrock", provider=PROVIDER, hint=_HINT)
    get = kwargs.get
    model = get("model") or defaults.model
    system, turns = convert_messages(messages)
    body: dict[str, Any] = {"messages": turns}
    if system:
        body["system"] = system
    inference: dict[str, Any] = {}
    max_tokens = get("max_tokens") or get("max_completion_tokens") or defaults.max_tokens
    if max_tokens is not None:
        inference["maxTokens"] = max_tokens
    thinking = _thinking(get("thinking"))
    temperature = get("temperature")
    if temperature is None and not (thinking and thinking.get("type") != "disabled"):
        # Extended thinking rejects a temperature; a configured default must not break it.
        temperature = defaults.temperature
    if temperature is not None:
        inference["temperature"] = temperature
    top_p = get("top_p", defaults.top_p)
    if top_p is not None:
        inference["topP"] = top_p
    stop = get("stop", get("stop_sequences"))
    if stop:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if inference:
        body["inferenceConfig"] = inference

    tools = get("tools")
    if get("parallel_tool_calls") is False:
        raise ValidationError("parallel_tool_calls=False cannot be expressed in Bedrock's Converse API",
                              provider=PROVIDER)
    if tools:
        tool_config: dict[str, Any] = {"tools": convert_tools(tools)}
        choice = convert_tool_choice(get("tool_choice"))
        if choice is not None:
            tool_config["toolChoice"] = choice
        body["toolConfig"] = tool_config
    elif get("tool_choice") not in (None, "auto", "none"):
        raise ValidationError("tool_choice needs tools", provider=PROVIDER)

    json_schema, json_mode = json_schema_of(get("response_format"), get("json"), get("json_schema"), "anthropic")
    typed = get("response_format")
    if json_schema is None and isinstance(typed, OutputSchema):
        # Converse's structured output has Anthropic's limits; a free-form map is sent as given for it to judge.
        json_schema = typed.schema
    if json_schema is not None:
        structure = {"jsonSchema": {"name": _schema_name(get("response_format"), json_schema),
                                    "schema": json.dumps(json_schema)}}
        body["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": structure}}
    elif json_mode:
        raise ValidationError("JSON mode without a schema is not available on Converse; pass json_schema=...",
                              provider=PROVIDER)
    if thinking is not None:
        body["additionalModelRequestFields"] = {"thinking": thinking}
    metadata = get("metadata")
    if metadata:
        # Converse's requestMetadata: string pairs kept with the invocation logs, never seen by the model.
        body["requestMetadata"] = {str(k): str(v) for k, v in metadata.items()}
    guardrail = get("guardrail")
    if guardrail is not None:
        body["guardrailConfig"] = dict(guardrail)
    _merge_extra(body, defaults.extra_body)
    _merge_extra(body, get("extra_body"))
    return body, CallOptions(model=model, timeout=get("timeout"), headers=dict(get("extra_headers") or {}) or None)


def _merge_extra(body: dict[str, Any], extra: Mapping[str, Any] | None) -> None:
    """Merge ``extra`` into ``body``; ``additionalModelRequestFields`` is merged key by key, not replaced."""
    for key, value in (extra or {}).items():
        current = body.get(key)
        if key == "additionalModelRequestFields" and isinstance(current, dict) and isinstance(value, Mapping):
            body[key] = {**current, **value}
        else:
            body[key] = value


def build_invoke(messages: Sequence[Message], kwargs: Mapping[str, Any], defaults: RequestDefaults
                 ) -> tuple[dict[str, Any], CallOptions]:
    """The InvokeModel body (Anthropic Messages format) for ``messages`` and the call's keyword arguments."""
    kwargs = settings_for(kwargs, "bedrock_invoke", provider=PROVIDER, hint=_HINT)
    forwarded = {k: v for k, v in kwargs.items() if k != "api"}
    anthropic_defaults = AnthropicDefaults(model=defaults.model, max_tokens=defaults.max_tokens,
                                           temperature=defaults.temperature, top_p=defaults.top_p,
                                           extra_body=dict(defaults.extra_body))
    try:
        body, call = anthropic_request(messages, forwarded, anthropic_defaults)
    except ValidationError as exc:
        raise ValidationError(exc.message.replace("anthropic provider", "bedrock provider (invoke API)"),
                              provider=PROVIDER) from None
    body.pop("model", None)
    body.pop("stream", None)
    body.setdefault("anthropic_version", BEDROCK_ANTHROPIC_VERSION)
    return body, call


def _schema_name(response_format: Any, schema: Mapping[str, Any]) -> str:
    if isinstance(response_format, OutputSchema):
        return response_format.name
    if isinstance(response_format, Mapping):
        inner = response_format.get("json_schema")
        if isinstance(inner, Mapping) and isinstance(inner.get("name"), str):
            return str(inner["name"])
    title = schema.get("title")
    return str(title) if isinstance(title, str) and title else "response"


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
    raise ValidationError(f"thinking must be a token budget, True/False or a dict, not {value!r}",
                          provider=PROVIDER)


# -- messages ---------------------------------------------------------------------------------------------


class _Documents:
    """Numbers unnamed documents across the request (Bedrock wants every document named, names unique)."""

    def __init__(self) -> None:
        self.count = 0

    def name(self, filename: str | None) -> str:
        self.count += 1
        return filename or f"Document {self.count}"


def convert_messages(messages: Sequence[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split our messages into Converse ``system`` blocks and merged user/assistant turns."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    docs = _Documents()
    for message in messages:
        role = message.role
        if role == "system" or role == "developer":
            system.extend(_system_blocks(message))
            continue
        if role == "tool":
            content = [_tool_result(message, docs)]
            role = "user"
        elif role == "assistant":
            content = _assistant_content(message, docs)
        else:
            content = _user_content(message, docs)
        if not content:
            continue  # Converse rejects empty turns; an empty message adds nothing
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(content)
        else:
            turns.append({"role": role, "content": content})
    return system, turns


def _system_blocks(message: Message) -> list[dict[str, Any]]:
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, TextPart):
            raise ValidationError("system messages may only contain text for the bedrock provider",
                                  provider=PROVIDER)
        blocks.append({"text": part.text})
        if part.cache_control is not None:
            blocks.append(dict(_CACHE_POINT))
    return blocks


def _preserved(message: Message) -> list[dict[str, Any]] | None:
    data = message.provider_data
    vendor = data.get(PROVIDER) if data else None
    content = vendor.get("content") if isinstance(vendor, Mapping) else None
    return content if isinstance(content, list) else None


def _matches(raw: list[dict[str, Any]], message: Message) -> bool:
    """True when the preserved blocks still say what the message says (same text, same tool calls)."""
    text = "".join(str(b["text"]) for b in raw if "text" in b)
    ids = [b["toolUse"].get("toolUseId") for b in raw
           if "toolUse" in b and b["toolUse"].get("type") != "server_tool_use"]
    return text == message.text and ids == [c.id for c in message.tool_calls or ()]


def _user_content(message: Message, docs: _Documents) -> list[dict[str, Any]]:
    raw = _preserved(message)
    if raw is not None and _matches(raw, message):
        return [dict(block) for block in raw]
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return _part_blocks(content, docs)


def _part_blocks(parts: Sequence[TextPart | ImagePart | DocumentPart], docs: _Documents) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            blocks.append({"text": part.text})
        elif isinstance(part, ImagePart):
            blocks.append({"image": _image(part)})
        else:
            blocks.append({"document": _document(part, docs)})
        if part.cache_control is not None:
            blocks.append(dict(_CACHE_POINT))
    return blocks


def _bytes_source(url: str | None, data: str | None, media_type: str | None, what: str
                  ) -> tuple[dict[str, Any], str | None]:
    """The ``source`` of an image/document and the media type a data URL names."""
    if data is not None:
        return {"bytes": data}, media_type
    assert url is not None
    if url.startswith("data:") and ";base64," in url:
        header, payload = url.split(",", 1)
        return {"bytes": payload}, header[5:].split(";", 1)[0] or media_type
    if url.startswith("s3://"):
        return {"s3Location": {"uri": url}}, media_type
    raise ValidationError(f"Bedrock takes {what}s as base64 data or s3:// locations, not {url[:60]!r}; "
                          "download it and pass data=...", provider=PROVIDER)


def _format(media_type: str | None, table: Mapping[str, str], what: str) -> str:
    fmt = table.get((media_type or "").lower())
    if fmt is None:
        raise ValidationError(f"Bedrock does not accept {what} of type {media_type!r}; supported: "
                              f"{', '.join(sorted(table))}", provider=PROVIDER)
    return fmt


def _image(part: ImagePart) -> dict[str, Any]:
    source, media_type = _bytes_source(part.url, part.data, part.media_type, "image")
    return {"format": _format(media_type or "image/png", _IMAGE_FORMATS, "images"), "source": source}


def _document(part: DocumentPart, docs: _Documents) -> dict[str, Any]:
    source, media_type = _bytes_source(part.url, part.data, part.media_type, "document")
    return {"name": docs.name(part.filename), "format": _format(media_type, _DOCUMENT_FORMATS, "documents"),
            "source": source}


def _tool_result(message: Message, docs: _Documents) -> dict[str, Any]:
    content = message.content
    if isinstance(content, list):
        blocks = [b for b in _part_blocks(content, docs) if "cachePoint" not in b]
    else:
        blocks = [{"text": content or ""}]
    data = message.provider_data or {}
    vendor = data.get(PROVIDER)
    extra: Mapping[str, Any] = vendor if isinstance(vendor, Mapping) else {}
    failed = bool(data.get("is_error") or extra.get("is_error"))
    return {"toolResult": {"toolUseId": message.tool_call_id, "content": blocks,
                           "status": "error" if failed else "success"}}


def _assistant_content(message: Message, docs: _Documents) -> list[dict[str, Any]]:
    raw = _preserved(message)
    if raw is not None and _matches(raw, message):
        return [dict(block) for block in raw]
    blocks: list[dict[str, Any]] = []
    if raw:
        # Edited since it was received: keep the reasoning blocks (they must lead the turn), rebuild the rest.
        blocks.extend(dict(b) for b in raw if "reasoningContent" in b)
    content = message.content
    if isinstance(content, str):
        if content:
            blocks.append({"text": content})
    elif content:
        blocks.extend(_part_blocks(content, docs))
    for index, call in enumerate(message.tool_calls or ()):
        blocks.append(_tool_use(call, index))
    return blocks


def _tool_use(call: ToolCall, index: int) -> dict[str, Any]:
    raw = call.function.arguments
    try:
        arguments = json.loads(raw) if raw and raw.strip() else {}
    except ValueError:
        arguments = {}
    if not isinstance(arguments, dict):
        arguments = {}
    return {"toolUse": {"toolUseId": call.id or f"tooluse_spoon_{index}", "name": call.function.name,
                        "input": arguments}}


# -- tools ------------------------------------------------------------------------------------------------

_NATIVE_TOOL_KEYS = frozenset({"toolSpec", "cachePoint", "systemTool"})


def convert_tools(tools: Sequence[ToolSpec | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Our tool specs as Converse ``toolSpec`` entries; Bedrock-native entries (``systemTool``...) pass through."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        if isinstance(tool, Mapping) and len(tool) == 1 and next(iter(tool)) in _NATIVE_TOOL_KEYS:
            out.append(dict(tool))
            continue
        spec = tool if isinstance(tool, ToolSpec) else ToolSpec.model_validate(tool)
        converted: dict[str, Any] = {"name": spec.name}
        if spec.description is not None:
            converted["description"] = spec.description
        converted["inputSchema"] = {"json": spec.parameters}
        if spec.strict is not None:
            converted["strict"] = spec.strict
        out.append({"toolSpec": converted})
        if spec.cache_control is not None:
            out.append(dict(_CACHE_POINT))
    return out


def convert_tool_choice(choice: Any) -> dict[str, Any] | None:
    """``auto`` / ``required`` (or ``any``) / a tool name / an OpenAI or Converse dict; ``none`` is refused."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice == "auto":
            return {"auto": {}}
        if choice in ("required", "any"):
            return {"any": {}}
        if choice == "none":
            raise ValidationError("tool_choice='none' cannot be expressed in Bedrock's Converse API; leave the "
                                  "tools out instead", provider=PROVIDER)
        return {"tool": {"name": choice}}
    if isinstance(choice, Mapping):
        if choice.get("type") == "function":
            function = choice.get("function")
            name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
            return {"tool": {"name": name}}
        return dict(choice)
    raise ValidationError(f"unsupported tool_choice {choice!r}", provider=PROVIDER)

