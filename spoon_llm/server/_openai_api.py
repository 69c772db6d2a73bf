"""The OpenAI front: request bodies to manager calls, and answers back to OpenAI's JSON and SSE shapes.

Requests are read field by field from the orjson-decoded body (no model validation of the whole body: it costs
more than the rest of the gateway's work). Messages in OpenAI's shape are our normalised shape already, so they
travel to the manager untouched; keywords the gateway does not consume go to the provider, which sends them on
(OpenAI-compatible backends) or refuses what it cannot translate (a 400 naming the field).
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..call_settings import ACCEPTED_KEYS
from ..types import EmbeddingResponse, LLMResponse, LLMResponseChunk, TokenUsage
from ._errors import GatewayError

__all__ = [
    "ChatCall",
    "CompletionCall",
    "CompletionStream",
    "OpenAIStream",
    "parse_chat",
    "parse_completion",
    "parse_embeddings",
    "refuse_untranslatable",
    "render_chat",
    "render_completion",
    "render_embeddings",
    "render_models",
]

# Keys the gateway consumes itself; everything else is a keyword for the provider.
_CHAT_CONTROL = frozenset({"model", "messages", "stream", "stream_options", "n"})
_COMPLETION_CONTROL = frozenset({"model", "prompt", "stream", "stream_options", "n"})
#: The usage event was not asked for (distinct from usage that is unknown, ``None``).
_NO_USAGE: Any = object()
_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}


def bad(message: str, param: str | None = None) -> GatewayError:
    """A 400 naming the offending field."""
    return GatewayError(400, message, code="invalid_request", param=param)


def require_model(body: Mapping[str, Any]) -> str:
    """The body's ``model``, which every inference request must name."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("'model' is required and must be a non-empty string", "model")
    return model


@dataclass(slots=True)
class ChatCall:
    """One chat request, ready for the manager: messages, keywords, and how to answer."""

    model: str
    messages: list[Any]
    kwargs: dict[str, Any]
    stream: bool = False
    include_usage: bool = False


@dataclass(slots=True)
class CompletionCall:
    """One text-completion request: the prompt, keywords, and how to answer."""

    model: str
    prompt: str
    kwargs: dict[str, Any]
    stream: bool = False
    include_usage: bool = False


#: The manager's own call arguments: the gateway decides routing, labels and caching for the key that calls, so a
#: body may not set them (a client would pick another provider section, pass as another team in the cost records
#: or read another tenant's cache entries).
_GATEWAY_ONLY = frozenset({"provider", "fallback", "deadline", "tags", "cache", "cache_namespace", "callbacks",
                           "resume_on_interrupt", "request_id"})
#: Names of the manager methods' own parameters ("model" is read before): a body key spelt so would collide.
_PARAMETERS = frozenset({"self", "messages", "prompt", "inputs"})
#: Output limits: a positive whole number when given (a negative one would lower the key's budget reservation).
_LIMITS = ("max_tokens", "max_completion_tokens")


def _refuse_gateway_only(body: Mapping[str, Any]) -> None:
    taken = _GATEWAY_ONLY.intersection(body)
    if taken:
        name = min(taken)
        raise bad(f"'{name}' is not a request field of this API: routing, labels and caching are set by the "
                  "gateway for your key (choose the model with 'model', an alias or 'provider/model')", name)


def _refuse_parameters(kwargs: Mapping[str, Any]) -> None:
    if not _PARAMETERS.isdisjoint(kwargs):
        name = min(_PARAMETERS.intersection(kwargs))
        raise bad(f"'{name}' is not a request field of this API", name)


#: OpenAI options that change what is generated or returned, which a provider of another family drops unless its
#: family takes them too (call_settings.ACCEPTED_KEYS).
_OUTPUT_OPTIONS = frozenset({"logprobs", "top_logprobs", "logit_bias", "seed", "presence_penalty",
                             "frequency_penalty"})
_SETTINGS_FAMILY = {"anthropic": "anthropic", "vertex_anthropic": "anthropic", "gemini": "gemini",
                    "vertex": "gemini", "bedrock": "bedrock", "openai_responses": "openai_responses"}
#: Per provider type of another family: the options its provider would drop. OpenAI-compatible types are absent.
_UNTRANSLATABLE: Mapping[str, frozenset[str]] = {
    kind: _OUTPUT_OPTIONS - ACCEPTED_KEYS[family] for kind, family in _SETTINGS_FAMILY.items()}


def refuse_untranslatable(kwargs: Mapping[str, Any], provider_type: str) -> None:
    """A 400 for an option the route's backend would drop (``logprobs`` for Anthropic...).

    A value that asks for nothing (``logprobs: false``, a zero penalty, an empty ``logit_bias``) is let through, as
    clients send such defaults; ``seed`` asks for something whatever its value.
    """
    refused = _UNTRANSLATABLE.get(provider_type)
    if refused is None or refused.isdisjoint(kwargs):
        return
    for key in sorted(refused.intersection(kwargs)):
        if key == "seed" or kwargs[key]:
            raise bad(f"'{key}' cannot be translated for this model's backend ({provider_type}); leave it out or "
                      "choose a model served by an OpenAI-compatible provider", key)


def _keywords(body: Mapping[str, Any], control: frozenset[str]) -> dict[str, Any]:
    _refuse_gateway_only(body)
    kwargs = {k: v for k, v in body.items() if k not in control and v is not None}
    _refuse_parameters(kwargs)
    for name in _LIMITS:
        limit = kwargs.get(name)
        if limit is not None and (type(limit) is not int or limit < 1):
            raise bad(f"'{name}' must be a positive integer", name)
    tools = kwargs.get("tools")
    if tools is not None and (type(tools) is not list or any(type(t) is not dict for t in tools)):
        raise bad("'tools' must be an array of objects", "tools")
    timeout = kwargs.get("timeout")
    if timeout is not None and (type(timeout) not in (int, float) or not timeout > 0):
        raise bad("'timeout' must be a positive number of seconds", "timeout")
    if "max_completion_tokens" in kwargs:  # one spelling for every backend
        kwargs.setdefault("max_tokens", kwargs.pop("max_completion_tokens"))
    return kwargs


def _stream_flag(body: Mapping[str, Any]) -> bool:
    """``stream``: a boolean when given; ``stream_options`` only with a stream (as OpenAI's API answers)."""
    stream = body.get("stream")
    if stream is not None and type(stream) is not bool:
        raise bad("'stream' must be a boolean", "stream")
    if body.get("stream_options") is not None and stream is not True:
        raise bad("'stream_options' is only allowed when 'stream' is true", "stream_options")
    return stream is True


def parse_chat(body: Any) -> ChatCall:
    """``POST /v1/chat/completions`` body -> :class:`ChatCall`; raises a 400 :class:`GatewayError` when invalid."""
    if type(body) is not dict:
        raise bad("the request body must be a JSON object")
    model = require_model(body)
    messages = body.get("messages")
    if type(messages) is not list or not messages:
        raise bad("'messages' must be a non-empty array", "messages")
    for message in messages:
        if type(message) is not dict or type(message.get("role")) is not str:
            raise bad("each message must be an object with a 'role'", "messages")
        content = message.get("content")
        if content is not None and type(content) is not str and (
                type(content) is not list or any(type(part) is not dict for part in content)):
            raise bad("a message's 'content' must be a string, an array of content parts or null", "messages")
        calls = message.get("tool_calls")
        if calls is not None and (type(calls) is not list or any(type(c) is not dict for c in calls)):
            raise bad("a message's 'tool_calls' must be an array of objects", "messages")
    n = body.get("n")
    if n is not None and n != 1:
        raise bad("only n=1 is supported", "n")
    if "functions" in body or "function_call" in body:
        raise bad("'functions' / 'function_call' are not supported; send 'tools' / 'tool_choice'", "functions")
    stream = _stream_flag(body)
    options = body.get("stream_options")
    include_usage = stream and type(options) is dict and options.get("include_usage") is True
    return ChatCall(model, messages, _keywords(body, _CHAT_CONTROL), stream, include_usage)


def parse_completion(body: Any) -> CompletionCall:
    """``POST /v1/completions`` body -> :class:`CompletionCall`."""
    if type(body) is not dict:
        raise bad("the request body must be a JSON object")
    model = require_model(body)
    prompt = body.get("prompt")
    if type(prompt) is list and len(prompt) == 1 and type(prompt[0]) is str:
        prompt = prompt[0]
    if type(prompt) is not str:
        raise bad("'prompt' must be a string (one prompt per request)", "prompt")
    n = body.get("n")
    if n is not None and n != 1:
        raise bad("only n=1 is supported", "n")
    stream = _stream_flag(body)
    options = body.get("stream_options")
    return CompletionCall(model, prompt, _keywords(body, _COMPLETION_CONTROL), stream,
                          stream and type(options) is dict and options.get("include_usage") is True)


def parse_embeddings(body: Any) -> tuple[str, list[str] | str, dict[str, Any], bool]:
    """``POST /v1/embeddings`` body -> ``(model, inputs, keywords, as_base64)``."""
    if type(body) is not dict:
        raise bad("the request body must be a JSON object")
    model = require_model(body)
    inputs = body.get("input")
    if not (type(inputs) is str or (type(inputs) is list and inputs and all(type(i) is str for i in inputs))):
        raise bad("'input' must be a string or a non-empty array of strings (token arrays are not supported)",
                  "input")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64", None):
        raise bad("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    _refuse_gateway_only(body)
    kwargs = {k: v for k, v in body.items() if k not in ("model", "input", "encoding_format") and v is not None}
    _refuse_parameters(kwargs)
    return model, inputs, kwargs, encoding == "base64"


# -- answers --------------------------------------------------------------------------------------------------


def usage_json(usage: TokenUsage | None) -> dict[str, Any]:
    """Usage in OpenAI's fields (with the cached and reasoning details)."""
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _tool_calls_json(calls: Iterable[Any]) -> list[dict[str, Any]]:
    return [{"id": c.id or f"call_{i}", "type": "function",
             "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for i, c in enumerate(calls)]


def render_chat(response: LLMResponse, request_id: str, created: int, model: str) -> bytes:
    """An OpenAI ``chat.completion`` object for ``response``."""
    message: dict[str, Any] = {"role": "assistant", "content": response.content or None,
                               "refusal": response.refusal}
    if response.tool_calls:
        message["tool_calls"] = _tool_calls_json(response.tool_calls)
    elif message["content"] is None:
        message["content"] = ""
    if response.reasoning:
        message["reasoning_content"] = response.reasoning
    finish = _FINISH.get(response.finish_reason or "stop", "stop")
    return orjson.dumps({
        "id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": created,
        "model": response.model or model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish,
                     "logprobs": response.metadata.get("logprobs")}],  # as the backend gave them (OpenAI's shape)
        "usage": usage_json(response.usage),
    })


def render_completion(response: LLMResponse, request_id: str, created: int, model: str) -> bytes:
    """An OpenAI ``text_completion`` object for ``response``."""
    finish = _FINISH.get(response.finish_reason or "stop", "stop")
    return orjson.dumps({
        "id": f"cmpl-{request_id}", "object": "text_completion", "created": created,
        "model": response.model or model,
        "choices": [{"index": 0, "text": response.content, "finish_reason": finish, "logprobs": None}],
        "usage": usage_json(response.usage),
    })


def _as_base64(vector: list[float]) -> str:
    packed = array("f", vector)
    if sys.byteorder != "little":  # the wire format is little-endian float32
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def render_embeddings(response: EmbeddingResponse, model: str, as_base64: bool) -> bytes:
    """An OpenAI embeddings ``list`` for ``response`` (floats, or base64 float32 when asked)."""
    data = [{"object": "embedding", "index": i, "embedding": _as_base64(v) if as_base64 else v}
            for i, v in enumerate(response.embeddings)]
    usage = response.usage
    tokens = usage.input_tokens if usage is not None else 0
    return orjson.dumps({"object": "list", "data": data, "model": response.model or model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def render_models(names: Iterable[tuple[str, str]], created: int) -> bytes:
    """``GET /v1/models``: ``(id, owner)`` pairs as OpenAI's model list."""
    return orjson.dumps({"object": "list", "data": [
        {"id": name, "object": "model", "created": created, "owned_by": owner} for name, owner in names]})


class _ToolProgress:
    """What a stream has sent of one tool call: whether its head (id, name) went out, and its arguments so far."""

    __slots__ = ("started", "arguments", "held")

    def __init__(self) -> None:
        self.started = False
        self.arguments = ""  # sent
        self.held = ""  # fragments that arrived before the call's name


class OpenAIStream:
    """Turns manager stream chunks into ``chat.completion.chunk`` SSE events, chunk for chunk.

    Text, reasoning and tool-call deltas go out as they arrive (a call's first delta carries its index, id, type
    and name, later ones argument fragments, as OpenAI streams them); the final chunk sends whatever of the
    complete calls had not been streamed (backends that settle arguments only at the end), then the finish chunk,
    the usage chunk when the client asked for ``stream_options.include_usage``, and ``[DONE]``.
    """

    __slots__ = ("_head", "_tail", "_include_usage", "_prefix", "_model", "_tools", "_text_head", "_reasoning_head",
                 "_delta_tail")

    def __init__(self, request_id: str, created: int, model: str, include_usage: bool) -> None:
        self._model = model
        self._prefix = b'data: {"id":"chatcmpl-' + request_id.encode() + b'","object":"chat.completion.chunk",' \
            b'"created":' + str(created).encode() + b',"model":' + orjson.dumps(model)
        self._head = self._prefix + b',"choices":[{"index":0,"delta":'
        self._tail = b',"finish_reason":null}]}\n\n'
        # A text or reasoning event is these around the JSON string: one concatenation per event.
        self._text_head = self._head + b'{"content":'
        self._reasoning_head = self._head + b'{"reasoning_content":'
        self._delta_tail = b"}" + self._tail
        self._include_usage = include_usage
        self._tools: dict[int, _ToolProgress] | None = None

    def start(self) -> bytes:
        """The first event: the assistant role."""
        return self._head + b'{"role":"assistant","content":""}' + self._tail

    def chunk(self, chunk: LLMResponseChunk) -> bytes | None:
        """The event for one manager chunk (``None`` when it carries nothing to send)."""
        kind = chunk.kind
        if kind == "text":
            if not chunk.delta:
                return None
            return self._text_head + orjson.dumps(chunk.delta) + self._delta_tail
        if kind == "reasoning":
            if not chunk.reasoning_delta:
                return None
            return self._reasoning_head + orjson.dumps(chunk.reasoning_delta) + self._delta_tail
        if kind == "final":
            return self.final(chunk)
        if kind == "tool" and chunk.tool_calls and chunk.tool_call_index is not None:
            call = chunk.tool_calls[0]
            return self._tool(chunk.tool_call_index, call.id, call.function.name, call.function.arguments)
        return None

    def _tool(self, index: int, call_id: str | None, name: str, fragment: str) -> bytes | None:
        tools = self._tools
        if tools is None:
            tools = self._tools = {}
        progress = tools.get(index)
        if progress is None:
            progress = tools[index] = _ToolProgress()
        if not progress.started:
            if not name:  # OpenAI's first delta names the function: hold fragments until the name is known
                progress.held += fragment
                return None
            progress.started = True
            arguments = progress.held + fragment
            progress.held = ""
            progress.arguments = arguments
            delta: dict[str, Any] = {"index": index, "id": call_id or f"call_{index}", "type": "function",
                                     "function": {"name": name, "arguments": arguments}}
        elif fragment:
            progress.arguments += fragment
            delta = {"index": index, "function": {"arguments": fragment}}
        else:
            return None
        return self._head + b'{"tool_calls":[' + orjson.dumps(delta) + b"]}" + self._tail

    def final(self, chunk: LLMResponseChunk) -> bytes:
        """The rest of the tool calls, the finish reason, usage when asked, and ``[DONE]``."""
        parts = []
        tools = self._tools or {}
        for index, call in enumerate(chunk.tool_calls):
            arguments = call.function.arguments
            progress = tools.get(index)
            if progress is None or not progress.started:
                piece = self._tool(index, call.id, call.function.name, arguments)
            elif arguments.startswith(progress.arguments):
                piece = self._tool(index, call.id, call.function.name, arguments[len(progress.arguments):])
            else:
                piece = None  # the streamed fragments already are the call (the backend rewrote its summary)
            if piece:
                parts.append(piece)
        finish = _FINISH.get(chunk.finish_reason or "stop", "stop")
        parts.append(self._head + b'{},"finish_reason":"' + finish.encode() + b'"}]}\n\n')
        return b"".join(_closing(parts, self._prefix, chunk.usage if self._include_usage else _NO_USAGE))

    @staticmethod
    def error(body: bytes) -> bytes:
        """An error after the stream started: OpenAI clients raise on a ``data: {"error": ...}`` event."""
        return b"data: " + body + b"\n\n"


def _closing(parts: list[bytes], prefix: bytes, usage: Any) -> list[bytes]:
    """``parts``, then the usage event when asked for (``stream_options.include_usage``) and ``[DONE]``."""
    if usage is not _NO_USAGE:
        parts.append(prefix + b',"choices":[],"usage":' + orjson.dumps(usage_json(usage)) + b"}\n\n")
    parts.append(b"data: [DONE]\n\n")
    return parts


class CompletionStream:
    """``POST /v1/completions`` with ``stream: true``: ``text_completion`` SSE events, then usage and ``[DONE]``.

    Reasoning and tool progress have no place in a text completion and are not sent.
    """

    __slots__ = ("_prefix", "_head", "_tail", "_include_usage")

    def __init__(self, request_id: str, created: int, model: str, include_usage: bool) -> None:
        self._prefix = b'data: {"id":"cmpl-' + request_id.encode() + b'","object":"text_completion","created":' \
            + str(created).encode() + b',"model":' + orjson.dumps(model)
        self._head = self._prefix + b',"choices":[{"index":0,"text":'
        self._tail = b',"logprobs":null,"finish_reason":null}]}\n\n'
        self._include_usage = include_usage

    def start(self) -> bytes:
        """Nothing: a completion stream opens with its first text."""
        return b""

    def chunk(self, chunk: LLMResponseChunk) -> bytes | None:
        """The event for one manager chunk (``None`` when it carries no text)."""
        if chunk.kind == "text":
            return self._head + orjson.dumps(chunk.delta) + self._tail if chunk.delta else None
        if chunk.kind == "final":
            return self.final(chunk)
        return None

    def final(self, chunk: LLMResponseChunk) -> bytes:
        """The finish reason, usage when asked, and ``[DONE]``."""
        finish = _FINISH.get(chunk.finish_reason or "stop", "stop")
        parts = [self._head + b'"","logprobs":null,"finish_reason":"' + finish.encode() + b'"}]}\n\n']
        return b"".join(_closing(parts, self._prefix, chunk.usage if self._include_usage else _NO_USAGE))

    @staticmethod
    def error(body: bytes) -> bytes:
        """An error after the stream started."""
        return b"data: " + body + b"\n\n"
