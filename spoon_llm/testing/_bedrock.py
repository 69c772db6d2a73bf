"""AWS Bedrock Runtime wire format: ``/model/{id}/{operation}`` routes, SigV4-shaped auth, JSON and event streams.

Operations: ``converse`` / ``converse-stream`` (Converse API), ``invoke`` / ``invoke-with-response-stream``
(Anthropic Messages bodies, answered by :mod:`._anthropic` and wrapped in ``chunk`` events) and
``count-tokens``. Streams are ``application/vnd.amazon.eventstream`` messages, one per HTTP chunk, built by
:func:`eventstream_message` as the corpus README's replay encoder does.

Every request must carry either ``Authorization: Bearer <Bedrock API key>`` or a SigV4-shaped
``Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/bedrock/aws4_request,
SignedHeaders=<names>, Signature=<64 hex>`` whose signed headers include ``host`` and ``x-amz-date``, plus an
``x-amz-date`` header; otherwise the answer is Bedrock's 403 (the signature's value is not verified: the
simulator holds no secret).
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from . import _answers, _anthropic, _json
from ._answers import Answer, Prompt
from ._faults import Fault
from ._http import JSON, Ctx, Response
from ._routes import CHAT, COUNT_TOKENS, Route

__all__ = ["EVENTSTREAM", "auth_failure", "error_response", "eventstream_frames", "eventstream_message",
           "model_and_stream", "prompt_of", "respond", "route"]

EVENTSTREAM = "application/vnd.amazon.eventstream"
_OPERATIONS = {
    "converse": (CHAT, "converse"),
    "converse-stream": (CHAT, "converse_stream"),
    "invoke": (CHAT, "invoke"),
    "invoke-with-response-stream": (CHAT, "invoke_stream"),
    "count-tokens": (COUNT_TOKENS, "count_tokens"),
}
_STREAM_OPS = frozenset({"converse_stream", "invoke_stream"})
FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
          "content_filter": "guardrail_intervened"}
_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=[^/\s,]+/\d{8}/[a-z0-9-]+/bedrock/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$"
)


def route(path: str) -> Route | None:
    """The route of a ``/model/{id}/{operation}`` path (the model id percent-decoded), else ``None``."""
    model, sep, operation = path[7:].rpartition("/")
    found = _OPERATIONS.get(operation)
    if not sep or not model or found is None:
        return None
    return Route("bedrock", found[0], found[1], unquote(model))


def model_and_stream(route: Route) -> tuple[str | None, bool]:
    """The model named in the path and whether the operation streams."""
    return route.model, route.op in _STREAM_OPS


# -- auth -------------------------------------------------------------------------------------------------


def auth_failure(headers: Iterable[tuple[bytes, bytes]]) -> Response | None:
    """Bedrock's 403 when the request is neither SigV4-shaped nor carrying a Bedrock API key; else ``None``."""
    authorization = date = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            authorization = value.decode("latin-1")
        elif lowered == b"x-amz-date":
            date = value.decode("latin-1")
    if authorization is None:
        return _error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    if authorization.startswith("Bearer ") and len(authorization) > 7:
        return None
    match = _SIGV4.match(authorization)
    if match is None:
        return _error(403, "IncompleteSignatureException",
                      "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters "
                      "for the AWS4-HMAC-SHA256 algorithm, scoped to the bedrock service.")
    signed = match.group(1).split(";")
    if "host" not in signed or "x-amz-date" not in signed or not date or not re.match(r"^\d{8}T\d{6}Z$", date):
        return _error(403, "IncompleteSignatureException",
                      "The request must sign the host and x-amz-date headers and carry X-Amz-Date.")
    return None


# -- requests ---------------------------------------------------------------------------------------------


def _text_of(blocks: Any) -> tuple[str, int]:
    """(text of the text blocks, characters of all text-like content) of a Converse content list."""
    if not isinstance(blocks, list):
        return "", 0
    texts: list[str] = []
    chars = 0
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
            chars += len(block["text"])
        elif isinstance(block.get("toolResult"), dict):
            chars += _text_of(block["toolResult"].get("content"))[1]
        elif isinstance(block.get("toolUse"), dict):
            chars += len(_json.dumps_str(block["toolUse"].get("input", {})))
    return " ".join(texts), chars


def prompt_of(route: Route, body: Any) -> Prompt:
    """Extract a :class:`Prompt` from a Converse or (Anthropic-format) InvokeModel body."""
    if route.op in ("invoke", "invoke_stream"):
        prompt = _anthropic.prompt_of(body)
    else:
        prompt = Prompt()
        if isinstance(body, dict):
            chars = _text_of(body.get("system"))[1]
            for message in body.get("messages") or ():
                if isinstance(message, dict):
                    text, n = _text_of(message.get("content"))
                    chars += n
                    if message.get("role") == "user" and text:
                        prompt.user_text = text
            prompt.input_chars = chars
            _tools_of(prompt, body.get("toolConfig"))
            _format_of(prompt, body.get("outputConfig"))
            inference = body.get("inferenceConfig")
            limit = inference.get("maxTokens") if isinstance(inference, dict) else None
            prompt.max_tokens = limit if isinstance(limit, int) else None
            extra = body.get("additionalModelRequestFields")
            thinking = extra.get("thinking") if isinstance(extra, dict) else None
            prompt.thinking = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    prompt.model = route.model or ""
    prompt.stream = route.op in _STREAM_OPS
    return prompt


def _tools_of(prompt: Prompt, config: Any) -> None:
    if not isinstance(config, dict):
        return
    for tool in config.get("tools") or ():
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            schema = spec.get("inputSchema")
            prompt.tools[spec["name"]] = (schema.get("json") if isinstance(schema, dict) else None) or {}
    choice = config.get("toolChoice")
    if isinstance(choice, dict):
        if "any" in choice and prompt.tools:
            prompt.forced_tool = next(iter(prompt.tools))
        elif isinstance(choice.get("tool"), dict) and isinstance(choice["tool"].get("name"), str):
            prompt.forced_tool = choice["tool"]["name"]


def _format_of(prompt: Prompt, config: Any) -> None:
    fmt = config.get("textFormat") if isinstance(config, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return
    prompt.json_mode = True
    structure = fmt.get("structure")
    inner = structure.get("jsonSchema") if isinstance(structure, dict) else None
    schema = inner.get("schema") if isinstance(inner, dict) else None
    if isinstance(schema, str):
        try:
            prompt.json_schema = _json.loads(schema.encode())
        except ValueError:
            prompt.json_schema = None


# -- answers ----------------------------------------------------------------------------------------------


def _usage(answer: Answer) -> dict[str, Any]:
    # Bedrock's inputTokens leaves out cache reads and writes; totalTokens counts everything.
    fresh = max(0, answer.input_tokens - answer.cached_tokens - answer.cache_write_tokens)
    usage: dict[str, Any] = {"inputTokens": fresh, "outputTokens": answer.output_tokens,
                             "totalTokens": answer.input_tokens + answer.output_tokens}
    if answer.cached_tokens or answer.cache_write_tokens:
        usage["cacheReadInputTokens"] = answer.cached_tokens
        usage["cacheWriteInputTokens"] = answer.cache_write_tokens
    return usage


def _signature(ctx: Ctx) -> str:
    return f"EqQBCkYIBxgCKkD{ctx.token}SimulatedSignature=="


def _blocks(answer: Answer, ctx: Ctx) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.reasoning is not None:
        blocks.append({"reasoningContent": {"reasoningText": {"text": answer.reasoning,
                                                              "signature": _signature(ctx)}}})
    if answer.text is not None and (answer.text or not answer.tool_calls):
        blocks.append({"text": answer.text})
    for call in answer.tool_calls:
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.arguments}})
    return blocks


def _converse(answer: Answer, ctx: Ctx) -> bytes:
    body = {
        "output": {"message": {"role": "assistant", "content": _blocks(answer, ctx)}},
        "stopReason": FINISH.get(answer.finish, answer.finish),
        "usage": _usage(answer),
        "metrics": {"latencyMs": 42},
    }
    return _json.dumps(body)


def eventstream_message(event: str, payload: bytes, message_type: str = "event",
                        content_type: str = "application/json") -> bytes:
    """One event stream message with the three string headers Bedrock sends, CRCs included."""
    headers = b""
    name_kind = ":event-type" if message_type == "event" else ":exception-type"
    for name, value in ((name_kind, event), (":content-type", content_type), (":message-type", message_type)):
        raw_name, raw_value = name.encode(), value.encode()
        headers += bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    prelude = struct.pack(">II", 16 + len(headers) + len(payload), len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def eventstream_frames(items: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """A recorded ``eventstream`` list (see the corpus README) as wire messages, one per item."""
    return [eventstream_message(str(item["event"]), str(item["data"]).encode(),
                                str(item.get("message_type", "event")),
                                str(item.get("content_type", "application/json"))) for item in items]


def _event(event: str, payload: Mapping[str, Any]) -> bytes:
    return eventstream_message(event, _json.dumps({**payload, "p": "abcdefghij"}))


def _converse_stream(answer: Answer, ctx: Ctx) -> list[bytes]:
    frames = [_event("messageStart", {"role": "assistant"})]
    index = 0
    if answer.reasoning is not None:
        for piece in _answers.split_chunks(answer.reasoning):
            frames.append(_event("contentBlockDelta", {"contentBlockIndex": index,
                                                       "delta": {"reasoningContent": {"text": piece}}}))
        frames.append(_event("contentBlockDelta", {"contentBlockIndex": index,
                                                   "delta": {"reasoningContent": {"signature": _signature(ctx)}}}))
        frames.append(_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if answer.text is not None and (answer.text or not answer.tool_calls):
        for piece in answer.text_chunks():
            frames.append(_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}))
        frames.append(_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for call in answer.tool_calls:
        frames.append(_event("contentBlockStart", {"contentBlockIndex": index, "start": {
            "toolUse": {"toolUseId": call.id, "name": call.name}}}))
        frames.append(_event("contentBlockDelta", {"contentBlockIndex": index,
                                                   "delta": {"toolUse": {"input": call.arguments_json}}}))
        frames.append(_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    frames.append(_event("messageStop", {"stopReason": FINISH.get(answer.finish, answer.finish)}))
    frames.append(_event("metadata", {"usage": _usage(answer), "metrics": {"latencyMs": 42}}))
    return frames


def _sse_data(frame: bytes) -> bytes:
    """The ``data:`` payload of one SSE frame rendered by :mod:`._anthropic`."""
    return b"".join(line[6:] for line in frame.split(b"\n") if line.startswith(b"data: "))


def _invoke_stream(answer: Answer, prompt: Prompt, ctx: Ctx) -> list[bytes]:
    frames = []
    for sse in _anthropic.render_stream(answer, prompt, ctx):
        data = _sse_data(sse)
        if b'"type": "ping"' in data or b'"type":"ping"' in data:
            continue  # Bedrock does not forward Anthropic's pings
        frames.append(eventstream_message("chunk", _json.dumps({"bytes": base64.b64encode(data).decode(),
                                                                "p": "abcdefghij"})))
    return frames


def respond(route: Route, body: Any, prompt: Prompt | None, answer: Answer | None, ctx: Ctx) -> Response:
    """Build the successful response for ``route`` (``answer`` is set for chat operations)."""
    op = route.op
    if op == "count_tokens":
        inner = body.get("input") if isinstance(body, dict) else None
        converse = inner.get("converse") if isinstance(inner, dict) else None
        tokens = prompt_of(Route("bedrock", CHAT, "converse", route.model), converse).input_chars
        return Response(200, [("content-type", JSON)],
                        _json.dumps({"inputTokens": max(1, _answers.estimate_tokens(tokens))}))
    assert prompt is not None and answer is not None
    if op == "converse":
        return Response(200, [("content-type", JSON)], _converse(answer, ctx))
    if op == "converse_stream":
        return Response(200, [("content-type", EVENTSTREAM)], events=_converse_stream(answer, ctx))
    if op == "invoke":
        return Response(200, [("content-type", JSON)], _anthropic.render(answer, prompt, ctx))
    return Response(200, [("content-type", EVENTSTREAM)], events=_invoke_stream(answer, prompt, ctx))


# -- errors -----------------------------------------------------------------------------------------------

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("ValidationException", "The provided request is not valid."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The requested resource could not be found: {model}."),
    408: ("ModelTimeoutException", "The request took too long to process."),
    424: ("ModelErrorException", "The model failed to process the request."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "An internal server error occurred. Retry your request."),
    503: ("ServiceUnavailableException", "The service isn't currently available. Try again later."),
}


def _error(status: int, error_type: str, message: str, retry_after: float | None = None) -> Response:
    headers = [("content-type", JSON), ("x-amzn-errortype", f"{error_type}:http://internal.amazon.com/coral/"
                                                             "com.amazon.bedrock/")]
    if retry_after is not None:
        headers.append(("retry-after", str(max(0, round(retry_after)))))
    return Response(status, headers, _json.dumps({"message": message}))


def error_response(route: Route, status: int, fault: Fault, model: str | None, input_tokens: int) -> Response:
    """Bedrock's error answer: ``x-amzn-errortype`` names the type, the body is ``{"message": ...}``."""
    if fault.context_limit is not None:
        used = max(input_tokens, fault.context_limit + 1)
        error_type, message = "ValidationException", f"Input is too long for requested model ({used} tokens)."
    else:
        default = _ERRORS.get(status) or ("InternalServerException" if status >= 500 else "ValidationException",
                                          f"Simulated error {status}.")
        error_type, message = default[0], default[1].format(model=model or "unknown")
    if fault.message is not None:
        message = fault.message
    if fault.error_type is not None:
        error_type = fault.error_type
    return _error(status, error_type, message, fault.retry_after)
