"""The native transport: what it sends (compared with the SDKs, operation by operation), how it is chosen, its
life cycle, and that it reports odd answers exactly as the SDK path does.

Three layers: the simulator for every operation of every vendor (the requests both transports send are diffed);
a bare asyncio server on 127.0.0.1 answering canned bytes (HTML error pages, empty bodies, ``null``, cut JSON,
odd SSE framing) that both transports must report identically; pure tests of the SSE parser and the JSON layer.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from _transport_views import error_view, request_view, stable

from spoon_llm import errors as ours
from spoon_llm.registry import LLMProviderRegistry
from spoon_llm.testing import Fault, ProviderSimulator, Reply
from spoon_llm.transport import SSEParser, dumps, loads, resolve_transport
from spoon_llm.transport import _config as transport_config

KEYS = {"openai": "sk-test-native-key-0001", "openrouter": "sk-or-v1-native-0002", "deepseek": "sk-native-0003",
        "vllm": None, "anthropic": "sk-ant-native-000000004", "gemini": "AIzaSyNATIVE00000000000005"}


def base_url(vendor: str, sim: ProviderSimulator) -> str:
    return {"openai": sim.openai_base_url, "openrouter": sim.openrouter_base_url, "deepseek": sim.deepseek_base_url,
            "vllm": sim.openai_base_url, "anthropic": sim.anthropic_base_url, "gemini": sim.gemini_base_url}[vendor]


async def build(vendor: str, url: str, transport: str, **config: Any) -> Any:
    settings = {"base_url": url, "transport": transport, **config}
    if KEYS[vendor]:
        settings["api_key"] = KEYS[vendor]
    if vendor == "vllm":
        settings.setdefault("model", "m")
    provider = await LLMProviderRegistry(load_plugins=False).get_initialized_provider(vendor, settings)
    assert provider.transport_name == transport
    return provider


# -- every operation sends the same request on both transports -----------------------------------------------

Operation = Callable[[Any], Awaitable[Any]]


async def _drain(stream: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in stream]


OPERATIONS: dict[str, tuple[str, dict[str, Any], Operation]] = {
    "openai-chat": ("openai", {"organization": "org-1", "project": "proj-1", "extra_headers": {"X-Team": "a"}},
                    lambda p: p.chat("hi", max_tokens=5, extra_headers={"X-Trace": "1"}, timeout=5)),
    "openai-stream": ("openai", {}, lambda p: _drain(p.chat_stream("hi", temperature=0.1))),
    "openai-legacy-completion": ("openai", {}, lambda p: p.completion("Say", model="gpt-3.5-turbo-instruct")),
    "openai-legacy-completion-stream": ("openai", {}, lambda p: _drain(p.completion_stream("Say",
                                                                                          model="davinci-002"))),
    "openai-embeddings": ("openai", {}, lambda p: p.embed(["a", "b"], dimensions=8)),
    "openai-health": ("openai", {}, lambda p: p.health_check()),
    "openrouter-chat": ("openrouter", {"http_referer": "https://app.example", "x_title": "Spoon"},
                        lambda p: p.chat("hi", model="anthropic/claude-3.5-sonnet", provider={"order": ["x"]})),
    "deepseek-stream": ("deepseek", {}, lambda p: _drain(p.chat_stream("hi", model="deepseek-reasoner"))),
    "vllm-keyless-chat": ("vllm", {}, lambda p: p.chat("hi", extra_headers={"Authorization": "Bearer leak"})),
    "anthropic-chat": ("anthropic", {"extra_headers": {"x-team": "blue"}},
                       lambda p: p.chat("hi", betas=["b1", "b2"], timeout=5)),
    "anthropic-stream": ("anthropic", {}, lambda p: _drain(p.chat_stream("hi", thinking=1024))),
    "anthropic-count-tokens": ("anthropic", {}, lambda p: p.count_tokens("count these")),
    "anthropic-health": ("anthropic", {}, lambda p: p.health_check()),
    "anthropic-models": ("anthropic", {}, lambda p: p.list_models()),
    "gemini-chat": ("gemini", {"extra_headers": {"x-team": "blue"}}, lambda p: p.chat("hi", temperature=0.2)),
    "gemini-stream": ("gemini", {}, lambda p: _drain(p.chat_stream("hi", timeout=7.5))),
    "gemini-v1-chat": ("gemini", {"api_version": "v1", "timeout": 0.4}, lambda p: p.chat("hi")),
    "gemini-count-tokens": ("gemini", {}, lambda p: p.count_tokens("count these")),
    "gemini-embeddings": ("gemini", {}, lambda p: p.embed(["a", "b"], task_type="retrieval_query", dimensions=8)),
    "gemini-health": ("gemini", {}, lambda p: p.health_check()),
}


@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_every_operation_sends_what_the_sdk_sends(name: str, sim: ProviderSimulator) -> None:
    vendor, config, operation = OPERATIONS[name]
    seen: dict[str, tuple[list[dict[str, Any]], Any]] = {}
    for transport in ("sdk", "native"):
        sim.reset()
        provider = await build(vendor, base_url(vendor, sim), transport, **config)
        try:
            result = await operation(provider)
        finally:
            await provider.cleanup()
        seen[transport] = ([request_view(r) for r in sim.requests], _gist(result))
    assert seen["native"][0] == seen["sdk"][0]
    assert seen["native"][1] == seen["sdk"][1]


def _gist(result: Any) -> Any:
    """What an operation returned, minus what the simulator makes up per request (ids, timestamps)."""
    if isinstance(result, list):
        return [_gist(item) for item in result]
    if hasattr(result, "model_dump"):
        data = stable(result.model_dump())
        data.pop("metadata", None)  # the simulated answer's id
        return data
    return result


async def test_the_headers_the_native_transport_sends(sim: ProviderSimulator) -> None:
    """Auth, versions and our own user agent, vendor by vendor (the simulator masks keys to their last 4)."""
    from spoon_llm.transport import user_agent

    for vendor, expected in {
        "openai": {"authorization": "Bearer ***0001", "accept": "application/json",
                   "content-type": "application/json"},
        "anthropic": {"authorization": "Bearer ***0004", "anthropic-version": "2026-10-21",
                      "accept": "application/json", "content-type": "application/json"},
        "gemini": {"x-goog-api-key": "***0005", "content-type": "application/json", "x-server-timeout": "60"},
    }.items():
        provider = await build(vendor, base_url(vendor, sim), "native")
        await provider.chat("hi")
        await provider.cleanup()
        headers = sim.last_request(vendor).headers
        assert {k: headers.get(k) for k in expected} == expected
        assert headers["user-agent"] == user_agent()
        assert not any(k.startswith("x-stainless") for k in headers)


async def test_a_keyless_deployment_never_sends_a_key(sim: ProviderSimulator) -> None:
    provider = await build("vllm", sim.openai_base_url, "native")
    await provider.chat("hi", extra_headers={"Authorization": "Bearer leak", "X-A": "b"})
    assert "authorization" not in sim.last_request("openai").headers
    assert sim.last_request("openai").header("x-a") == "b"
    assert await provider.health_check() is True and sim.last_request().path == "/health"
    await provider.cleanup()


# -- choosing the transport ----------------------------------------------------------------------------------


def test_native_is_the_default_and_sdk_one_line_away() -> None:
    from spoon_llm.config.models import ProviderConfig

    supported = ("native", "sdk", "aiohttp")
    assert resolve_transport(ProviderConfig(name="x"), sdk_injected=False, supported=supported) == "native"
    assert resolve_transport(ProviderConfig(name="x", transport="sdk"), sdk_injected=False,
                             supported=supported) == "sdk"
    # An injected SDK client means the SDK path; a transport a provider lacks falls back to the SDK.
    assert resolve_transport(ProviderConfig(name="x"), sdk_injected=True, supported=supported) == "sdk"
    assert resolve_transport(ProviderConfig(name="x", transport="aiohttp"), sdk_injected=False,
                             supported=("native", "sdk")) == "sdk"


def test_without_aiohttp_the_default_falls_back_and_an_explicit_choice_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from spoon_llm.config.models import ProviderConfig

    monkeypatch.setattr(transport_config, "native_available", lambda: False)
    supported = ("native", "sdk")
    assert resolve_transport(ProviderConfig(name="x"), sdk_injected=False, supported=supported) == "sdk"
    with pytest.raises(ours.ConfigurationError, match=r'spoon-llm\[native\]'):
        resolve_transport(ProviderConfig(name="x", transport="native"), sdk_injected=False, supported=supported)


async def test_a_config_file_switches_one_deployment_back_to_the_sdk(sim: ProviderSimulator) -> None:
    from spoon_llm import ConfigurationManager
    from spoon_llm.manager import LLMManager

    config = ConfigurationManager({"providers": {
        "fast": {"type": "openai", "api_key": KEYS["openai"], "base_url": sim.openai_base_url},
        "sdk": {"type": "openai", "api_key": KEYS["openai"], "base_url": sim.openai_base_url, "transport": "sdk"},
    }}, env={})
    manager = LLMManager(config)
    try:
        await manager.chat("hi", provider="fast")
        await manager.chat("hi", provider="sdk")
        agents = [r.header("user-agent") or "" for r in sim.requests_for("openai", "chat")]
        assert agents[0].startswith("spoon-llm/") and agents[1].startswith("AsyncOpenAI/")
    finally:
        await manager.cleanup()


def test_importing_spoon_llm_and_the_providers_does_not_import_aiohttp() -> None:
    code = (
        "import sys, spoon_llm, spoon_llm.transport\n"
        "import spoon_llm.providers.openai, spoon_llm.providers.anthropic, spoon_llm.providers.gemini\n"
        "assert 'aiohttp' not in sys.modules, 'aiohttp loads only when a native client is built'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- life cycle ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "gemini"])
async def test_one_session_per_deployment_closed_by_cleanup(vendor: str, sim: ProviderSimulator) -> None:
    provider = await build(vendor, base_url(vendor, sim), "native", max_connections=3, keepalive_expiry=4,
                           timeout=9, connect_timeout=2)
    native = provider._transport.client if vendor == "openai" else provider._native
    assert native.connector_limit == 3 and native.settings.keepalive_expiry == 4
    assert (native.settings.timeout, native.settings.connect_timeout) == (9, 2)
    await asyncio.gather(*(provider.chat(f"q{i}") for i in range(12)))
    assert len(sim.requests) == 12
    await provider.cleanup()
    assert native.closed


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "gemini"])
async def test_the_per_call_timeout_and_the_configured_one_are_honoured(vendor: str, sim: ProviderSimulator) -> None:
    provider = await build(vendor, base_url(vendor, sim), "native", timeout=5)
    try:
        sim.fault(None, Fault.slow(2))
        with pytest.raises(ours.TimeoutError) as info:
            await provider.chat("hi", timeout=0.2)
        assert info.value.retryable
    finally:
        await provider.cleanup()
    provider = await build(vendor, base_url(vendor, sim), "native", timeout=0.3)
    try:
        sim.script(None, Reply(text=" ".join(f"word{i}" for i in range(40))))
        sim.fault(None, Fault.slow_stream(2))
        # Nothing arrived for 0.3 s between two events: a timeout, or (once text reached the caller) an
        # interruption carrying that text.
        with pytest.raises((ours.TimeoutError, ours.StreamInterruptedError)) as cut:
            await _drain(provider.chat_stream("hi"))
        assert "timed out" in cut.value.message
        assert isinstance(cut.value, ours.TimeoutError) or cut.value.partial_content
    finally:
        await provider.cleanup()


async def test_the_sdk_client_is_there_for_the_endpoints_we_do_not_wrap(sim: ProviderSimulator) -> None:
    provider = await build("openai", sim.openai_base_url, "native")
    client = await provider.sdk_client()
    assert await provider.sdk_client() is client
    models = await client.models.list()
    assert models.data
    assert sim.last_request("openai").header("authorization") == "Bearer ***0001"
    await provider.cleanup()


# -- every simulator fault, every vendor: both transports report it alike ------------------------------------

FAULTS = {
    "429-retry-after": Fault.rate_limited(retry_after=2),
    "401": Fault.unauthorized(),
    "403": Fault.forbidden(),
    "404": Fault.model_not_found(),
    "400-context": Fault.context_length_exceeded(limit=8),
    "500": Fault.server_error(),
    "503-retry-after": Fault.unavailable(retry_after=3),
    "529": Fault.overloaded(),
    "reset": Fault.connection_reset(),
    "disconnect-at-once": Fault.disconnect(after=0),
    "disconnect-mid-way": Fault.disconnect(after=3),
    "truncated": Fault.truncated_stream(after=3),
    "malformed-json": Fault.malformed_json(),
}
LONG = " ".join(f"word{i}" for i in range(60))


def _fault_cases() -> list[Any]:
    out = []
    for name in FAULTS:
        for vendor in ("openai", "anthropic", "gemini"):
            for stream in (False, True):
                if name == "truncated" and not stream:
                    continue  # a stream-only fault
                out.append(pytest.param(vendor, name, stream, id=f"{vendor}-{name}-{'stream' if stream else 'chat'}"))
    return out


@pytest.mark.parametrize(("vendor", "name", "stream"), _fault_cases())
async def test_every_fault_is_reported_alike(vendor: str, name: str, stream: bool, sim: ProviderSimulator) -> None:
    views = {}
    for transport in ("sdk", "native"):
        sim.reset()
        provider = await build(vendor, base_url(vendor, sim), transport)
        sim.script(None, Reply(text=LONG))
        sim.fault(None, FAULTS[name])
        delivered: list[str] = []
        try:
            with pytest.raises(ours.ProviderError) as info:
                if stream:
                    async for chunk in provider.chat_stream("hi"):
                        delivered.append(chunk.delta)
                else:
                    await provider.chat("hi")
        finally:
            await provider.cleanup()
        view = error_view(info.value)
        if isinstance(info.value, (ours.NetworkError, ours.StreamInterruptedError)) and not view["status_code"]:
            # A broken connection or body is worded by the library that noticed it (httpx2's RemoteProtocolError,
            # aiohttp's ServerDisconnectedError, google-genai's "Failed to parse response as JSON"); what the
            # caller acts on (class, retryability, partial text and usage) must not differ.
            assert view.pop("message")
        views[transport] = (view, "".join(delivered))
        assert len(sim.requests) == 1  # never retried by the client
    assert views["native"] == views["sdk"]
    error, delivered_text = views["native"]
    if name in ("reset", "disconnect-at-once"):
        assert error["class"] in ("NetworkError", "RequestTimeoutError") and error["retryable"]
    if delivered_text:  # text reached the caller before the stream broke
        assert error["class"] == "StreamInterruptedError" and error["partial_content"] == delivered_text


# -- odd answers: both transports report them alike ----------------------------------------------------------


class CannedServer:
    """A bare HTTP/1.1 server on 127.0.0.1 answering each request with the next canned response (then closing)."""

    def __init__(self) -> None:
        self.answers: list[bytes] = []
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self) -> CannedServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def answer(self, status: int, body: bytes, content_type: str = "application/json",
               headers: dict[str, str] | None = None, chunked: bool = False) -> None:
        head = [f"HTTP/1.1 {status} Status", f"content-type: {content_type}", "connection: close"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if chunked:
            payload = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in body.split(b"|") if piece)
            head.append("transfer-encoding: chunked")
            self.answers.append(("\r\n".join(head) + "\r\n\r\n").encode() + payload + b"0\r\n\r\n")
        else:
            head.append(f"content-length: {len(body)}")
            self.answers.append(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(self.answers.pop(0))
        await writer.drain()
        writer.close()


OPENAI_SSE = (b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hel"}}]}\r\n\r\n'
              b": keep-alive\r\n\r\n|"
              b'data: {"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\r|\n\r\n'
              b'data: [DONE]')
ANTHROPIC_SSE = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"c",'
                 b'"usage":{"input_tokens":3,"output_tokens":1}}}\n\n|event: content_block_start\ndata: '
                 b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
                 b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,|"delta":'
                 b'{"type":"text_delta","text":"Hi"}}\n\n')
GEMINI_SSE = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]}}]}\r\n\r\n|'
              b'data: {"error":{"code":503,"message":"overloaded mid-stream","status":"UNAVAILABLE"}}\r\n\r\n')

CANNED: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "html-502": ("*", False, {"status": 502, "body": b"<html>Bad gateway</html>", "content_type": "text/html"}),
    "empty-500": ("*", False, {"status": 500, "body": b""}),
    "null-400": ("*", False, {"status": 400, "body": b"null"}),
    "list-429": ("*", False, {"status": 429, "headers": {"retry-after": "7", "x-ratelimit-remaining-requests": "0"},
                              "body": b'[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]'}),
    "should-not-retry-503": ("*", False, {"status": 503, "headers": {"x-should-retry": "false"},
                                          "body": b'{"error":{"message":"down","type":"overloaded_error"}}'}),
    "cut-json-200": ("*", False, {"status": 200, "body": b'{"choices": [{"mess'}),
    "array-200": ("*", False, {"status": 200, "body": b"[1, 2]"}),
    "error-on-stream-request": ("*", True, {"status": 400, "body": b'{"error":{"message":"bad","type":"x"}}'}),
    "openai-odd-framing": ("openai", True, {"status": 200, "body": OPENAI_SSE, "content_type": "text/event-stream",
                                            "chunked": True}),
    "anthropic-no-message-stop": ("anthropic", True, {"status": 200, "body": ANTHROPIC_SSE,
                                                      "content_type": "text/event-stream", "chunked": True}),
    "gemini-in-band-error": ("gemini", True, {"status": 200, "body": GEMINI_SSE, "content_type": "text/event-stream",
                                              "chunked": True}),
}


def _canned_cases() -> list[Any]:
    out = []
    for name, (vendors, _, _) in CANNED.items():
        for vendor in (("openai", "anthropic", "gemini") if vendors == "*" else (vendors,)):
            out.append(pytest.param(vendor, name, id=f"{vendor}-{name}"))
    return out


@pytest.mark.parametrize(("vendor", "name"), _canned_cases())
async def test_odd_answers_are_reported_alike(vendor: str, name: str) -> None:
    _, stream, answer = CANNED[name]
    views: dict[str, Any] = {}
    async with CannedServer() as server:
        url = f"http://127.0.0.1:{server.port}" + ("/v1" if vendor == "openai" else "")
        for transport in ("sdk", "native"):
            server.answer(answer["status"], answer["body"], answer.get("content_type", "application/json"),
                          answer.get("headers"), answer.get("chunked", False))
            provider = await build(vendor, url, transport)
            chunks: list[Any] = []
            error: BaseException | None = None
            try:
                if stream:
                    async for chunk in provider.chat_stream("hi"):
                        chunks.append(stable(chunk.model_dump()))
                else:
                    chunks.append(stable((await provider.chat("hi")).model_dump()))
            except ours.LLMError as exc:
                error = exc
            finally:
                await provider.cleanup()
            views[transport] = (chunks, error_view(error) if error is not None else None)
    assert views["native"] == views["sdk"]
    if answer["status"] >= 300 or name.startswith(("cut", "array")):
        assert views["native"][1] is not None


# -- the pieces ----------------------------------------------------------------------------------------------

SSE_STREAM = (b": OPENROUTER PROCESSING\n\n"
              b'data: {"a": 1}\r\n\r\n'
              b"event: message\ndata: line one\ndata:line two\n\n"
              b"id: 7\nretry: 10\n\n"
              b"\n\n\ndata: after blank lines\r\rdata: bare cr\r"
              b"data: tail without blank line")


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, len(SSE_STREAM)])
def test_the_sse_parser_frames_any_chunking_alike(size: int) -> None:
    parser = SSEParser()
    events = []
    for i in range(0, len(SSE_STREAM), size):
        events += parser.feed(SSE_STREAM[i:i + size])
    events += parser.close()
    # A bare CR ends a line, not an event: the last two data lines form one event, dispatched by close().
    assert events == [(None, b'{"a": 1}'), ("message", b"line one\nline two"), (None, b"after blank lines"),
                      (None, b"bare cr\ntail without blank line")]
    assert parser.close() == []


def test_json_matches_the_standard_library_whatever_orjson_refuses() -> None:
    for document in (b'{"a": 1.5, "b": "\\u00e9", "c": [null, true], "u64": 18446744073709551615}',
                     '{"s": "\\ud800"}', b'{"n": 1e400}'):
        assert loads(document) == json.loads(document)
    assert str(loads(b'{"n": NaN}')["n"]) == "nan"  # orjson refuses the literal; the standard library reads it
    # Left on purpose (see spoon_llm.transport._json): an integer beyond 64 bits comes back as a float.
    assert loads(b'{"big": 123456789012345678901}')["big"] == pytest.approx(123456789012345678901)
    for bad in (b'{"cut": ', b"", b"not json"):
        with pytest.raises(json.JSONDecodeError) as ours_error:
            loads(bad)
        with pytest.raises(json.JSONDecodeError) as std_error:
            json.loads(bad)
        assert str(ours_error.value) == str(std_error.value)
    assert json.loads(dumps({"set": {1}, 2: "non-str key", "text": "é"})) == {"set": [1], "2": "non-str key",
                                                                               "text": "é"}
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_env_proxy_is_read_once_and_honours_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    from spoon_llm.transport._native import env_proxy

    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert env_proxy("https://api.openai.com/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert env_proxy("https://api.openai.com/v1") == "http://127.0.0.1:3128"
    assert env_proxy("https://internal.example/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    assert env_proxy("https://api.openai.com/v1") is None  # aiohttp cannot speak SOCKS
