"""Transport layers without a server: a fake SDK client through the constructor, and ``httpx2.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from spoon_llm import errors as ours
from spoon_llm.providers.ollama import OllamaProvider
from spoon_llm.providers.openai import OpenAIProvider
from spoon_llm.providers.openai_compatible_provider import OpenAICompatibleProvider
from spoon_llm.providers.openrouter import OpenRouterProvider
from spoon_llm.providers.vllm import VLLMProvider

KEY = "sk-test-transport-key-123456"
CHAT_OK = {"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                                       "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}


class Recorder:
    """A MockTransport handler that records requests and answers with a function of the request."""

    def __init__(self, answer: Callable[[httpx2.Request], httpx2.Response] | None = None) -> None:
        self.requests: list[httpx2.Request] = []
        self.answer = answer or (lambda request: httpx2.Response(200, json=CHAT_OK))

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.answer(request)

    @property
    def last_body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[-1].content)
        return body


async def make(cls: type[OpenAICompatibleProvider], handler: Recorder, **config: Any) -> OpenAICompatibleProvider:
    provider = cls(http_transport=httpx2.MockTransport(handler))
    config.setdefault("base_url", "http://127.0.0.1:9/v1")
    await provider.initialize(config)
    return provider


# -- layer 1: a fake SDK client ------------------------------------------------------------------------------


class FakeClient:
    """Stands in for ``AsyncOpenAI``: records what the provider asks of the SDK."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.closed = False

    async def post(self, path: str, **kwargs: Any) -> httpx2.Response:
        self.calls.append({"path": path, **kwargs, "body": json.loads(kwargs["content"])})
        return httpx2.Response(200, json=CHAT_OK, headers={"x-request-id": "req_fake"})

    async def close(self) -> None:
        self.closed = True


async def test_fake_client_sees_path_body_and_per_call_options() -> None:
    fake = FakeClient()
    provider = OpenAIProvider(client=fake)
    await provider.initialize({"api_key": KEY, "model": "gpt-4o", "max_tokens": 50, "temperature": 0.1,
                               "extra_body": {"metadata": {"app": "x"}, "store": False}})
    response = await provider.chat("hi", extra_headers={"X-Trace": "1"}, timeout=3.0, extra_body={"store": True})
    call = fake.calls[-1]
    assert call["path"] == "chat/completions" and call["cast_to"] is httpx2.Response
    assert call["options"] == {"headers": {"X-Trace": "1"}, "timeout": 3.0}
    assert call["body"] == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50,
                            "temperature": 0.1, "metadata": {"app": "x"}, "store": True}
    assert response.content == "ok" and response.request_id == "req_fake" and response.provider == "openai"
    await provider.cleanup()
    assert not fake.closed  # an injected client belongs to the caller


async def test_not_initialised_is_a_configuration_error() -> None:
    provider = OpenAIProvider(client=FakeClient())
    with pytest.raises(ours.ConfigurationError, match="initialize"):
        await provider.chat("hi")
    stream = provider.chat_stream("hi")  # like any async generator, the error comes on iteration
    with pytest.raises(ours.ConfigurationError, match="initialize"):
        await stream.__anext__()
    assert await provider.health_check() is False


async def test_missing_key_and_missing_base_url_fail_with_the_fix() -> None:
    with pytest.raises(ours.ConfigurationError, match="OPENAI_API_KEY"):
        await OpenAIProvider().initialize({})
    with pytest.raises(ours.ConfigurationError, match="base_url"):
        await OpenAICompatibleProvider().initialize({"name": "my-server"})


# -- layer 2: httpx2.MockTransport -----------------------------------------------------------------------------


async def test_auth_and_default_headers() -> None:
    handler = Recorder()
    provider = await make(OpenAIProvider, handler, api_key=KEY, extra_headers={"X-Team": "a"}, organization="org-1")
    await provider.chat("hi")
    headers = handler.requests[-1].headers
    assert headers["authorization"] == f"Bearer {KEY}" and headers["x-team"] == "a"
    assert headers["openai-organization"] == "org-1"
    assert handler.requests[-1].url.path == "/v1/chat/completions"
    await provider.cleanup()


@pytest.mark.parametrize("cls", [VLLMProvider, OllamaProvider, OpenAICompatibleProvider])
async def test_keyless_providers_send_no_authorization(cls: type[OpenAICompatibleProvider]) -> None:
    handler = Recorder()
    provider = await make(cls, handler, model="m")
    await provider.chat("hi")
    await provider.chat("hi", extra_headers={"X-A": "b"})
    assert all("authorization" not in r.headers for r in handler.requests)
    await provider.cleanup()


async def test_openrouter_attribution_headers_from_config_or_env(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = Recorder()
    provider = await make(OpenRouterProvider, handler, api_key=KEY, http_referer="https://app.example",
                          x_title="My App")
    await provider.chat("hi", model="anthropic/claude-3.5-sonnet")
    assert handler.requests[-1].headers["http-referer"] == "https://app.example"
    assert handler.requests[-1].headers["x-title"] == "My App"
    await provider.cleanup()
    monkeypatch.setenv("OPENROUTER_X_TITLE", "From Env")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-leak")
    provider = await make(OpenRouterProvider, handler, api_key=KEY)
    await provider.chat("hi")
    headers = handler.requests[-1].headers
    assert headers["x-title"] == "From Env" and "http-referer" not in headers
    assert "openai-organization" not in headers  # the OpenAI SDK's env defaults never reach another vendor
    await provider.cleanup()
    provider = await make(OpenRouterProvider, handler, api_key=KEY, extra_headers={"X-Title": "Explicit"})
    await provider.chat("hi")
    assert handler.requests[-1].headers["x-title"] == "Explicit"  # configured headers win
    await provider.cleanup()


async def test_pool_limits_and_timeouts_come_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[httpx2.Limits] = []
    real = httpx2.Limits

    def capture(**kwargs: Any) -> httpx2.Limits:
        built.append(real(**kwargs))
        return built[-1]

    monkeypatch.setattr(httpx2, "Limits", capture)
    handler = Recorder()
    provider = await make(OpenAIProvider, handler, api_key=KEY, timeout=12, connect_timeout=2,
                          max_connections=7, max_keepalive_connections=3, keepalive_expiry=9)
    limits = built[-1]
    assert (limits.max_connections, limits.max_keepalive_connections, limits.keepalive_expiry) == (7, 3, 9)
    await provider.chat("hi")
    assert handler.requests[-1].extensions["timeout"] == {"connect": 2.0, "read": 12.0, "write": 12.0, "pool": 12.0}
    await provider.chat("hi", timeout=1.5)
    assert handler.requests[-1].extensions["timeout"]["read"] == 1.5
    http = provider._http
    await provider.cleanup()
    assert http is not None and http.is_closed


async def test_the_sdk_never_retries() -> None:
    handler = Recorder(lambda request: httpx2.Response(500, json={"error": {"message": "boom"}}))
    provider = await make(OpenAIProvider, handler, api_key=KEY)
    with pytest.raises(ours.ProviderUnavailableError, match="boom"):
        await provider.chat("hi")
    assert len(handler.requests) == 1
    await provider.cleanup()


@pytest.mark.parametrize(("raised", "expected"), [
    (httpx2.ConnectError("refused"), ours.NetworkError),
    (httpx2.ReadTimeout("slow"), ours.TimeoutError),
    (httpx2.RemoteProtocolError("peer closed"), ours.NetworkError),
])
async def test_transport_failures_are_retryable_network_errors(raised: Exception,
                                                               expected: type[ours.ProviderError]) -> None:
    def fail(request: httpx2.Request) -> httpx2.Response:
        raise raised

    provider = await make(OpenAIProvider, Recorder(fail), api_key=KEY)
    with pytest.raises(expected) as info:
        await provider.chat("hi")
    assert info.value.retryable and type(info.value) is expected
    with pytest.raises(expected):
        async for _ in provider.chat_stream("hi"):
            pass
    await provider.cleanup()


@pytest.mark.parametrize(("answer", "expected"), [
    (httpx2.Response(200, content=b'{"choices": [', headers={"content-type": "application/json"}),
     ours.ResponseParsingError),
    (httpx2.Response(200, json=[1, 2]), ours.ResponseParsingError),
    (httpx2.Response(200, json={"error": {"message": "model overloaded", "code": 503}}), ours.ServiceUnavailableError),
    (httpx2.Response(400, json={"error": {"message": "too long", "code": "context_length_exceeded"}}),
     ours.TokenLimitError),
])
async def test_bad_answers(answer: httpx2.Response, expected: type[ours.ProviderError]) -> None:
    provider = await make(OpenAIProvider, Recorder(lambda request: answer), api_key=KEY)
    with pytest.raises(expected):
        await provider.chat("hi")
    await provider.cleanup()


def sse(*events: str) -> bytes:
    return "".join(f"data: {e}\n\n" for e in events).encode()


class CutStream(httpx2.AsyncByteStream):
    """Yields some bytes, then fails like a dropped connection."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> Any:
        yield self.data
        raise httpx2.RemoteProtocolError("peer closed connection without sending complete message body")


async def test_a_stream_dropped_after_content_is_interrupted_with_the_partial_answer() -> None:
    first = sse('{"choices":[{"index":0,"delta":{"content":"Hel"}}]}')
    handler = Recorder(lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                                       stream=CutStream(first)))
    provider = await make(OpenAIProvider, handler, api_key=KEY)
    seen = []
    with pytest.raises(ours.StreamInterruptedError) as info:
        async for chunk in provider.chat_stream("hi"):
            seen.append(chunk.delta)
    assert seen == ["Hel"] and info.value.partial_content == "Hel" and not info.value.retryable
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)
    await provider.cleanup()


async def test_a_stream_that_ends_early_is_not_taken_as_complete() -> None:
    cut = sse('{"choices":[{"index":0,"delta":{"content":"Hel"}}]}') + b'data: {"choices":[{"ind'
    handler = Recorder(lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                                       content=cut))
    provider = await make(OpenAIProvider, handler, api_key=KEY)
    with pytest.raises(ours.StreamInterruptedError):
        async for _ in provider.chat_stream("hi"):
            pass
    handler.answer = lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=b"")
    with pytest.raises(ours.ResponseParsingError):
        async for _ in provider.chat_stream("hi"):
            pass
    await provider.cleanup()


async def test_a_server_that_ignores_stream_still_streams() -> None:
    provider = await make(OpenAIProvider, Recorder(), api_key=KEY)
    chunks = [c async for c in provider.chat_stream("hi")]
    assert [c.kind for c in chunks] == ["text", "final"] and chunks[-1].content == "ok"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 3
    await provider.cleanup()


async def test_stream_callbacks_sync_and_async() -> None:
    answer = sse('{"choices":[{"index":0,"delta":{"content":"a"}}]}',
                 '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', "[DONE]")
    handler = Recorder(lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                                       content=answer))
    provider = await make(OpenAIProvider, handler, api_key=KEY)
    seen: list[str] = []

    async def later(chunk: Any) -> None:
        seen.append("async:" + chunk.kind)

    chunks = [c async for c in provider.chat_stream("hi", callbacks=[lambda c: seen.append(c.kind), later])]
    assert [c.kind for c in chunks] == ["text", "final"]
    assert seen == ["text", "async:text", "final", "async:final"]
    response = await provider.collect(provider.chat_stream("hi"))
    assert response.content == "a" and response.finish_reason == "stop"
    await provider.cleanup()


async def test_the_key_never_appears_in_reprs_or_errors() -> None:
    handler = Recorder(lambda request: httpx2.Response(
        401, json={"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}))
    provider = await make(OpenAIProvider, handler, api_key=KEY)
    with pytest.raises(ours.AuthenticationError) as info:
        await provider.chat("hi")
    for text in (repr(provider), str(info.value), repr(info.value), str(info.value.body),
                 str(provider.get_metadata())):
        assert KEY not in text
    await provider.cleanup()
