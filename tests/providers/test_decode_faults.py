"""Hostile, malformed or oversized upstream answers end in our typed errors, and no error exposes a credential.

The providers run against a small aiohttp server on 127.0.0.1 that answers with whatever bytes a test sets
(status, headers, body pieces, or a handler of its own), so shapes the simulator never produces -- a body nested
5,000 levels deep, fields of the wrong type, a gzip header over plain bytes, a redirect loop -- reach the real
decoding paths of both transports.
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from spoon_llm.config import ConfigurationManager
from spoon_llm.errors import (
    AuthenticationError,
    InvalidRequestError,
    NetworkError,
    ProviderUnavailableError,
    ResponseParsingError,
    ResponseTooLargeError,
    StreamInterruptedError,
    redact_secrets,
)
from spoon_llm.providers.anthropic import AnthropicProvider
from spoon_llm.providers.azure import AzureOpenAIProvider
from spoon_llm.providers.bedrock import BedrockProvider
from spoon_llm.providers.gemini import GeminiProvider
from spoon_llm.providers.openai import OpenAIProvider
from spoon_llm.providers.openai_responses import OpenAIResponsesProvider
from spoon_llm.providers.vertex import VertexProvider
from spoon_llm.streaming import collect_stream
from spoon_llm.testing._bedrock import eventstream_message
from spoon_llm.transport import SSEParser, loads

JSON = "application/json"
SSE = "text/event-stream"
EVENTSTREAM = "application/vnd.amazon.eventstream"
HI = [{"role": "user", "content": "hi"}]

OPENAI_KEY = "sk-test-decode-faults-openai-0001"
ANTHROPIC_KEY = "sk-ant-test-decode-faults-0002"
GEMINI_KEY = "AIzaSyTESTdecodeFaults00000000003"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+decodeFaultsKEY"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Upstream:
    """What the local server answers next: a status, headers and body pieces, or a handler of the test's own."""

    def __init__(self) -> None:
        self.url = ""
        self.status = 200
        self.headers: dict[str, str] = {"content-type": JSON}
        self.pieces: list[bytes] = [b"{}"]
        self.handler: Handler | None = None

    def answer(self, body: bytes, *, status: int = 200, content_type: str = JSON, **headers: str) -> None:
        self.status, self.pieces = status, [body]
        self.headers = {"content-type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.handler is not None:
            return await self.handler(request)
        response = web.StreamResponse(status=self.status, headers=self.headers)
        await response.prepare(request)
        for piece in self.pieces:
            await response.write(piece)
        await response.write_eof()
        return response


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    served = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", served.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    served.url = f"http://127.0.0.1:{port}"
    yield served
    await runner.cleanup()


def _config(vendor: str, base: str, transport: str) -> tuple[Any, dict[str, Any]]:
    """The provider instance of ``vendor`` and its configuration against ``base``."""
    common = {"max_retries": 0, "transport": transport}
    if vendor == "openai":
        return OpenAIProvider(), {**common, "api_key": OPENAI_KEY, "base_url": base + "/v1", "model": "gpt-4o-mini"}
    if vendor == "openai_responses":
        return OpenAIResponsesProvider(), {**common, "api_key": OPENAI_KEY, "base_url": base + "/v1",
                                           "model": "gpt-4o-mini"}
    if vendor == "anthropic":
        return AnthropicProvider(), {**common, "api_key": ANTHROPIC_KEY, "base_url": base, "model": "claude-x"}
    if vendor == "gemini":
        return GeminiProvider(), {**common, "api_key": GEMINI_KEY, "base_url": base, "model": "gemini-2.5-flash"}
    if vendor == "vertex":
        return VertexProvider(), {**common, "base_url": base, "model": "gemini-2.5-flash", "project": "p",
                                  "vertex_location": "us-central1", "vertex_access_token": _vertex_token()}
    assert vendor == "bedrock"
    return BedrockProvider(), {"max_retries": 0, "base_url": base, "aws_region": "us-east-1",
                               "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": AWS_SECRET,
                               "model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}


def _vertex_token() -> str:
    # Unique per provider: a token registered as a secret by an earlier test must not make a later one pass.
    return f"ya29.a0test{uuid.uuid4().hex}"


Make = Callable[..., Awaitable[Any]]


@pytest.fixture
async def make(upstream: Upstream, transport: str) -> AsyncIterator[Make]:
    """``await make(vendor, **config)``: a provider on ``transport`` pointed at the local server."""
    made: list[Any] = []

    async def build(vendor: str, provider: Any = None, **extra: Any) -> Any:
        instance, config = _config(vendor, upstream.url, transport)
        instance = provider or instance
        await instance.initialize({**config, **extra})
        made.append(instance)
        return instance

    yield build
    for provider in made:
        await provider.cleanup()


async def _failure(call: Awaitable[Any]) -> BaseException:
    """What ``call`` raised (any exception: a test then checks it is one of ours)."""
    try:
        await call
    except BaseException as exc:  # noqa: BLE001 - the point is to see whatever escapes
        return exc
    raise AssertionError("the call succeeded")


def _sse(*events: tuple[str | None, Any]) -> bytes:
    out = b""
    for name, data in events:
        if name:
            out += b"event: " + name.encode() + b"\n"
        out += b"data: " + json.dumps(data).encode() + b"\n\n"
    return out


VENDORS = ["openai", "anthropic", "gemini", "openai_responses"]


# -- JSON nested deeper than the interpreter can decode --------------------------------------------------------


def test_loads_reports_a_document_nested_too_deep_as_malformed() -> None:
    for document in (b"[" * 5000, "[" * 5000, b'{"a":' * 5000):
        with pytest.raises(ValueError, match="nesting too deep"):
            loads(document)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_deeply_nested_answer_is_a_parsing_error(upstream: Upstream, make: Make, vendor: str) -> None:
    provider = await make(vendor)
    upstream.answer(b"[" * 5000)
    assert isinstance(await _failure(provider.chat(HI)), ResponseParsingError)
    upstream.answer(b"data: " + b"[" * 5000 + b"\n\n", content_type=SSE)
    error = await _failure(collect_stream(provider.chat_stream(HI)))
    # A cut stream and an undecodable event are both typed errors the manager can retry (never RecursionError).
    assert isinstance(error, (ResponseParsingError, NetworkError)), repr(error)


@pytest.mark.parametrize(("vendor", "transport"), [*((vendor, "native") for vendor in VENDORS), ("gemini", "sdk")])
async def test_a_deeply_nested_error_body_is_still_our_error(upstream: Upstream, make: Make, transport: str,
                                                             vendor: str) -> None:
    provider = await make(vendor)
    upstream.answer(b"[" * 5000, status=500)
    error = await _failure(provider.chat(HI))
    # google-genai decodes error bodies itself: what it cannot decode is a parsing error.
    expected = ResponseParsingError if transport == "sdk" else ProviderUnavailableError
    assert isinstance(error, expected), repr(error)
    upstream.answer(b'{"error":' * 3000, status=400)
    error = await _failure(provider.chat(HI))
    assert isinstance(error, ResponseParsingError if transport == "sdk" else InvalidRequestError), repr(error)


@pytest.mark.parametrize("vendor", ["openai", "openai_responses"])
async def test_an_error_body_nested_hundreds_deep_is_still_our_error(upstream: Upstream, make: Make,
                                                                     vendor: str) -> None:
    provider = await make(vendor)
    upstream.answer(b'{"error":' * 900 + b"1" + b"}" * 900, status=400)  # decodable, but deep
    error = await _failure(provider.chat(HI))
    assert isinstance(error, InvalidRequestError), repr(error)


# -- whole answers whose fields have the wrong type ------------------------------------------------------------

_WRONG_TYPED = {
    "anthropic-model": ("anthropic", {"id": "m", "type": "message", "role": "assistant", "model": 7,
                                      "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                                      "usage": {"input_tokens": 1, "output_tokens": 1}}),
    "anthropic-usage": ("anthropic", {"id": "m", "type": "message", "role": "assistant", "model": "m",
                                      "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                                      "usage": {"input_tokens": 1.5, "output_tokens": 1}}),
    "gemini-model": ("gemini", {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]},
                                                "finishReason": "STOP"}], "modelVersion": 7}),
    "vertex-model": ("vertex", {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]},
                                                "finishReason": "STOP"}], "modelVersion": 7}),
    "responses-model": ("openai_responses", {"id": "r", "object": "response", "status": "completed", "model": 7,
                                             "output": [{"type": "message", "role": "assistant", "content": [
                                                 {"type": "output_text", "text": "hi"}]}]}),
}


@pytest.mark.parametrize("case", sorted(_WRONG_TYPED))
async def test_wrong_typed_fields_of_a_whole_answer_are_a_parsing_error(upstream: Upstream, make: Make,
                                                                        case: str) -> None:
    vendor, body = _WRONG_TYPED[case]
    provider = await make(vendor)
    upstream.answer(json.dumps(body).encode())
    error = await _failure(provider.chat(HI))
    assert isinstance(error, ResponseParsingError), repr(error)
    assert "unexpected shape" in error.message


@pytest.mark.parametrize("transport", ["native"])
async def test_wrong_typed_fields_of_a_bedrock_answer_are_a_parsing_error(upstream: Upstream, make: Make) -> None:
    provider = await make("bedrock")
    upstream.answer(json.dumps({"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
                                "stopReason": "end_turn",
                                "usage": {"inputTokens": 1, "outputTokens": "x", "totalTokens": 3}}).encode())
    assert isinstance(await _failure(provider.chat(HI)), ResponseParsingError)


@pytest.mark.parametrize("vendor", ["gemini", "vertex"])
@pytest.mark.parametrize("body", [b"7", b"true"])
async def test_a_number_or_boolean_under_a_200_is_a_parsing_error(upstream: Upstream, make: Make, vendor: str,
                                                                  body: bytes) -> None:
    provider = await make(vendor)
    upstream.answer(body)
    error = await _failure(provider.chat(HI))
    assert isinstance(error, ResponseParsingError), repr(error)


# -- streams whose fields have the wrong type (they surface when the stream closes) ----------------------------

_OPENAI_CLOSE = (None, {"id": "c", "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {},
                                                                         "finish_reason": "tool_calls"}]})


def _openai_tool(call_id: Any, arguments: Any) -> bytes:
    delta = {"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                             "function": {"name": "f", "arguments": arguments}}]}
    opening = (None, {"id": "c", "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": delta,
                                                                       "finish_reason": None}]})
    return _sse(opening, _OPENAI_CLOSE) + b"data: [DONE]\n\n"


_ANTHROPIC_USAGE = _sse(
    ("message_start", {"type": "message_start", "message": {
        "id": "m", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": None,
        "usage": {"input_tokens": "x", "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
    ("message_stop", {"type": "message_stop"}))
_GEMINI_USAGE = _sse(
    (None, {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}}], "usageMetadata": 7}),
    (None, {"candidates": [{"content": {"role": "model", "parts": [{"text": "!"}]}, "finishReason": "STOP"}]}))
_RESPONSES_MODEL = _sse(
    ("response.created", {"type": "response.created", "response": {"id": "r", "model": "gpt-4o-mini",
                                                                   "status": "in_progress", "output": []}}),
    ("response.output_text.delta", {"type": "response.output_text.delta", "output_index": 0, "content_index": 0,
                                    "item_id": "m", "delta": "hi"}),
    ("response.completed", {"type": "response.completed", "response": {
        "id": "r", "model": "gpt-4o-mini", "status": "completed", "usage": {"input_tokens": "x"},
        "output": [{"type": "message", "id": "m", "role": "assistant",
                    "content": [{"type": "output_text", "text": "hi"}]}]}}))

_WRONG_TYPED_STREAMS = {
    # No chunk reached the caller: a retryable parsing error.
    "openai-tool-id": ("openai", _openai_tool(7, "{}"), ResponseParsingError),
    # Text reached the caller first: the answer is half-delivered.
    "anthropic-usage": ("anthropic", _ANTHROPIC_USAGE, StreamInterruptedError),
    "gemini-usage": ("gemini", _GEMINI_USAGE, StreamInterruptedError),
    "responses-usage": ("openai_responses", _RESPONSES_MODEL, StreamInterruptedError),
}


@pytest.mark.parametrize("case", sorted(_WRONG_TYPED_STREAMS))
async def test_wrong_typed_fields_of_a_stream_are_our_error(upstream: Upstream, make: Make, case: str) -> None:
    vendor, body, expected = _WRONG_TYPED_STREAMS[case]
    provider = await make(vendor)
    upstream.answer(body, content_type=SSE)
    error = await _failure(collect_stream(provider.chat_stream(HI)))
    assert isinstance(error, expected), repr(error)
    assert not isinstance(error, StreamInterruptedError) or error.partial_content


async def test_tool_arguments_sent_as_a_json_value_are_kept_as_their_json(upstream: Upstream, make: Make) -> None:
    provider = await make("openai")
    upstream.answer(_openai_tool("call_1", 7), content_type=SSE)
    chunks = [chunk async for chunk in provider.chat_stream(HI)]
    assert chunks[-1].tool_calls[0].function.arguments == "7"  # what a whole answer's decoding makes of it


def _bedrock_event(name: str, payload: Any) -> bytes:
    return eventstream_message(name, json.dumps(payload).encode())


@pytest.mark.parametrize("transport", ["native"])
async def test_wrong_typed_fields_of_a_bedrock_stream_are_our_error(upstream: Upstream, make: Make) -> None:
    provider = await make("bedrock")
    upstream.answer(b"".join([
        _bedrock_event("messageStart", {"role": "assistant"}),
        _bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}),
        _bedrock_event("contentBlockDelta", {"contentBlockIndex": "x", "delta": {"text": "!"}}),
        _bedrock_event("contentBlockStop", {"contentBlockIndex": 0}),
        _bedrock_event("messageStop", {"stopReason": "end_turn"}),
        _bedrock_event("metadata", {"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}})]),
        content_type=EVENTSTREAM)
    error = await _failure(collect_stream(provider.chat_stream(HI)))
    assert isinstance(error, StreamInterruptedError) and error.partial_content == "hi!", repr(error)


# -- the other decoders: embeddings, token counts, model lists --------------------------------------------------


@pytest.mark.parametrize("body", [b'{"data":[{"embedding":"!!!notbase64"}]}', b'{"data":[{"embedding":"AAAA"}]}',
                                  b'{"data":7}', b'{"data":[{"embedding":[1,"a"]}]}'])
async def test_an_openai_embedding_of_the_wrong_shape_is_a_parsing_error(upstream: Upstream, make: Make,
                                                                         body: bytes) -> None:
    provider = await make("openai")
    upstream.answer(body)
    error = await _failure(provider.embed(["a"]))
    assert isinstance(error, ResponseParsingError), repr(error)


_OTHER_DECODERS = {
    "anthropic-count_tokens": ("anthropic", "count_tokens", b"{}"),
    "anthropic-list_models": ("anthropic", "list_models", b'{"data":[{"x":1}]}'),
    "gemini-embed": ("gemini", "embed", b"7"),
    "gemini-embed-values": ("gemini", "embed", b'{"embeddings":[{"values":[1,null]}]}'),
    "gemini-count_tokens": ("gemini", "count_tokens", b'{"totalTokens":"x"}'),
    "vertex-count_tokens": ("vertex", "count_tokens", b'{"totalTokens":"x"}'),
    "responses-list_models": ("openai_responses", "list_models", b'{"data":[{"x":1}]}'),
}


@pytest.mark.parametrize("case", sorted(_OTHER_DECODERS))
async def test_other_answers_of_the_wrong_shape_are_a_parsing_error(upstream: Upstream, make: Make,
                                                                    case: str) -> None:
    vendor, operation, body = _OTHER_DECODERS[case]
    provider = await make(vendor)
    upstream.answer(body)
    calls = {"embed": lambda: provider.embed(["a"]), "count_tokens": lambda: provider.count_tokens(HI),
             "list_models": lambda: provider.list_models()}
    error = await _failure(calls[operation]())
    assert isinstance(error, ResponseParsingError), repr(error)


@pytest.mark.parametrize("transport", ["native"])
async def test_a_bedrock_token_count_of_the_wrong_shape_is_a_parsing_error(upstream: Upstream, make: Make) -> None:
    provider = await make("bedrock")
    upstream.answer(b"{}")
    assert isinstance(await _failure(provider.count_tokens(HI)), ResponseParsingError)


# -- the SDK transport: a body that does not match its content-encoding -------------------------------------------

_GZIP_LIES = {
    "openai-stream": ("openai", "stream", SSE),
    "anthropic-stream": ("anthropic", "stream", SSE),
    "anthropic-stream-json": ("anthropic", "stream", JSON),  # a stream request answered with one JSON body
    "gemini-chat": ("gemini", "chat", JSON),
}


@pytest.mark.parametrize("transport", ["sdk"])
@pytest.mark.parametrize("case", sorted(_GZIP_LIES))
async def test_a_body_that_is_not_its_content_encoding_is_a_parsing_error(upstream: Upstream, make: Make,
                                                                          case: str) -> None:
    vendor, mode, content_type = _GZIP_LIES[case]
    provider = await make(vendor)
    upstream.answer(b"not gzip at all", content_type=content_type, content_encoding="gzip")
    call = provider.chat(HI) if mode == "chat" else collect_stream(provider.chat_stream(HI))
    error = await _failure(call)
    assert isinstance(error, ResponseParsingError), repr(error)


# -- credentials ------------------------------------------------------------------------------------------------


class CredentialUnavailableError(Exception):
    """What azure-identity raises when no credential is available."""


async def _no_entra_token() -> str:
    raise CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token")


async def test_a_failing_entra_id_token_provider_is_an_authentication_error(upstream: Upstream, make: Make) -> None:
    provider = await make("openai", AzureOpenAIProvider(token_provider=_no_entra_token), api_key=None,
                          base_url=upstream.url, model="gpt-4o", api_version="2024-10-21")
    error = await _failure(provider.chat(HI))
    assert isinstance(error, AuthenticationError), repr(error)
    assert "CredentialUnavailableError" in error.message


def _exposes(error: BaseException, secret: str) -> list[str]:
    """Where ``secret`` shows: the error's text, repr, formatted traceback, or any link of its cause chain."""
    found = []
    if secret in str(error) or secret in repr(error):
        found.append("str/repr")
    if secret in "".join(traceback.format_exception(error)):
        found.append("traceback")
    seen: set[int] = set()
    pending = [error]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        # The attributes of each link: an HTTP library's exception keeps the request (and its headers) there.
        if secret in repr(vars(link)):
            found.append(f"{type(link).__name__} attributes")
        pending.extend(e for e in (link.__cause__, link.__context__) if e is not None)
    return found


@pytest.mark.parametrize("transport", ["native"])
@pytest.mark.parametrize(("vendor", "secret"), [("openai", OPENAI_KEY), ("anthropic", ANTHROPIC_KEY),
                                                ("gemini", GEMINI_KEY)])
async def test_a_redirect_loop_leaves_no_key_in_the_error(upstream: Upstream, make: Make, vendor: str,
                                                          secret: str) -> None:
    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect(location=str(request.rel_url) + "x")

    upstream.handler = redirect
    provider = await make(vendor)
    error = await _failure(provider.chat(HI))
    assert isinstance(error, NetworkError), repr(error)
    assert error.__cause__ is not None  # the transport's exception is still there to read, scrubbed
    assert _exposes(error, secret) == []


async def test_a_vertex_access_token_quoted_by_an_error_body_is_masked(upstream: Upstream, make: Make) -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").split(" ", 1)[-1]
        return web.json_response({"error": {"code": 401, "status": "UNAUTHENTICATED",
                                            "message": f"invalid authentication credentials: token {token} expired"}},
                                 status=401)

    upstream.handler = echo
    token = _vertex_token()
    provider = await make("vertex", vertex_access_token=token)
    error = await _failure(provider.chat(HI))
    assert isinstance(error, AuthenticationError), repr(error)
    assert "***" in error.message
    assert _exposes(error, token) == []
    assert token not in json.dumps(getattr(error, "body", None))


def test_configured_tokens_and_aws_secrets_are_registered_as_secrets() -> None:
    tokens = {name: f"{name}{uuid.uuid4().hex}" for name in ("vertex", "azure", "secret", "session")}
    ConfigurationManager({"providers": {
        "vertex": {"vertex_access_token": tokens["vertex"], "project": "p"},
        "azure": {"azure_ad_token": tokens["azure"], "base_url": "https://r.openai.azure.com"},
        "bedrock": {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": tokens["secret"],
                    "aws_session_token": tokens["session"], "aws_region": "us-east-1"},
    }}, env={})
    for name, token in tokens.items():
        assert redact_secrets(f"echoed {token} here") == "echoed *** here", name


# -- SSE framing: a CRLF blank line read piece by piece ----------------------------------------------------------


def test_sse_parser_fed_one_byte_at_a_time_emits_each_event_at_its_blank_line() -> None:
    parser = SSEParser()
    stream = b"data: 1\r\n\r\ndata: 2\r\n\r\n"
    ends = {stream.index(b"\r\n\r\n") + 3: b"1", len(stream) - 1: b"2"}  # the last byte of each blank line
    delivered: list[bytes] = []
    for position in range(len(stream)):
        delivered += [data for _, data in parser.feed(stream[position:position + 1])]
        if position in ends:
            assert delivered and delivered[-1] == ends[position], (position, delivered)
    assert delivered == [b"1", b"2"]
    assert parser.close() == []


def test_sse_parser_sees_a_crlf_blank_line_split_after_its_cr() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a":1}\r') == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r\n") == [(None, b'{"a":1}')]


# -- Bedrock's stream caps, the Responses API's error under a 200 --------------------------------------------------


def _bedrock_text_stream(pieces: int, size: int) -> bytes:
    return b"".join([_bedrock_event("messageStart", {"role": "assistant"})]
                    + [_bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x" * size}})
                       for _ in range(pieces)]
                    + [_bedrock_event("contentBlockStop", {"contentBlockIndex": 0}),
                       _bedrock_event("messageStop", {"stopReason": "end_turn"})])


@pytest.mark.parametrize("transport", ["native"])
@pytest.mark.parametrize("limit", [{"max_event_bytes": 1000}, {"max_stream_bytes": 20000}])
async def test_bedrock_streams_respect_the_size_caps(upstream: Upstream, make: Make, limit: dict[str, int]) -> None:
    provider = await make("bedrock", **limit)
    upstream.answer(_bedrock_text_stream(20, 5000), content_type=EVENTSTREAM)
    error = await _failure(collect_stream(provider.chat_stream(HI)))
    assert isinstance(error, ResponseTooLargeError), repr(error)
    assert next(iter(limit)) in error.message


async def test_a_responses_error_object_under_a_200_raises_it(upstream: Upstream, make: Make) -> None:
    provider = await make("openai_responses")
    upstream.answer(b'{"error":{"message":"The server had an error","type":"server_error","code":"server_error"}}')
    error = await _failure(provider.chat(HI))
    assert isinstance(error, ProviderUnavailableError), repr(error)
    assert "The server had an error" in error.message
