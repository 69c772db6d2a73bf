"""Every fault at the wire ends in the documented ``LLMError`` subclass, for every vendor, transport and mode.

A raw 127.0.0.1 server sends exactly the broken bytes (cut JSON, invalid UTF-8, an HTML page or an error object
under a 200, an SSE stream that never ends or whose one event is too big, a reset mid-body, 429s with every shape
of ``Retry-After``); the provider is the real one on its real transport (our aiohttp client, or the vendor SDK).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from spoon_llm.errors import (
    LLMError,
    NetworkError,
    ProviderError,
    RateLimitError,
    ResponseParsingError,
    StreamInterruptedError,
)
from spoon_llm.errors import TimeoutError as LLMTimeoutError

from ._raw import Raw, RawServer
from ._vendors import VENDORS, Vendor

SSE = {"content-type": "text/event-stream"}
MAX_EVENT = 64 * 1024
HANG_TIMEOUT = 0.5


def _stream_or_json(stream: bool) -> dict[str, str]:
    return SSE if stream else {"content-type": "application/json"}


def _body(vendor: Vendor, stream: bool) -> bytes:
    return vendor.stream_body() if stream else json.dumps(vendor.answer).encode()


def truncated_json(v: Vendor, stream: bool) -> Raw:
    if stream:
        first = json.dumps(v.stream_events[0]).encode()
        return Raw(headers=SSE, parts=[v.stream_event(first[: len(first) // 2], "message_start")])
    body = _body(v, False)
    return Raw(parts=[body[: len(body) // 2]])


def invalid_utf8(v: Vendor, stream: bool) -> Raw:
    body = _body(v, stream)
    # A text value gets an invalid byte sequence (and, for named events, the event name too).
    # (in a stream, inside the first text so that nothing has reached the caller yet)
    broken = body.replace(b"hel", b"h\xc3\x28el", 1) if stream else body.replace(b"hello", b"hel\xfflo")
    if stream and v.event_names:
        broken = broken.replace(b"event: content_block_delta", b"event: content_\xff_delta")
    assert broken != body
    return Raw(headers=_stream_or_json(stream), parts=[broken])


def html_page(v: Vendor, stream: bool) -> Raw:
    return Raw(headers={"content-type": "text/html"}, parts=[b"<html><body><h1>Welcome to nginx!</h1></body></html>"])


def empty_body(v: Vendor, stream: bool) -> Raw:
    return Raw(headers=_stream_or_json(stream), parts=[])


def error_object(v: Vendor, stream: bool) -> Raw:
    data = json.dumps(v.error_object).encode()
    if stream:
        return Raw(headers=SSE, parts=[v.stream_event(data, "error")])
    return Raw(parts=[data])


def wrong_types(v: Vendor, stream: bool) -> Raw:
    if stream:
        return Raw(headers=SSE, parts=[v.stream_event(json.dumps(v.wrong_stream_event).encode())])
    return Raw(parts=[json.dumps(v.wrong_types).encode()])


def sse_garbage(v: Vendor, stream: bool) -> Raw:
    return Raw(headers=SSE, parts=[v.stream_event(b"<<not json \x00\x01>>")])


def sse_never_ends(v: Vendor, stream: bool) -> Raw:
    return Raw(headers=_stream_or_json(stream), chunked=True, parts=[], end="hang")


def oversized_event(v: Vendor, stream: bool) -> Raw:
    # One event of 4 x the configured cap, arriving in pieces (never a blank line).
    piece = b"data: " + b"x" * (MAX_EVENT // 2)
    return Raw(headers=_stream_or_json(stream), chunked=True, parts=[piece, b"y" * MAX_EVENT, b"z" * MAX_EVENT * 2])


def reset_mid_body(v: Vendor, stream: bool) -> Raw:
    body = _body(v, stream)
    if stream:
        first = v.stream_body()[:30]
        return Raw(headers=SSE, chunked=True, parts=[first], end="reset")
    return Raw(parts=[body[: len(body) // 2]], length=len(body), end="reset")


def retry_after(value: str | Callable[[], str]) -> Callable[[Vendor, bool], Raw]:
    def fault(v: Vendor, stream: bool) -> Raw:
        body = json.dumps(v.error_object).encode()
        header = value() if callable(value) else value  # dates are taken when the case runs
        return Raw(status=429, headers={"retry-after": header}, parts=[body])

    return fault


def _http_date(offset: float) -> Callable[[], str]:
    return lambda: email.utils.formatdate(time.time() + offset, usegmt=True)


#: fault -> (the Raw builder, the error classes any of which is the documented outcome)
FAULTS: dict[str, tuple[Callable[[Vendor, bool], Raw], tuple[type[LLMError], ...]]] = {
    "truncated_json": (truncated_json, (ResponseParsingError, NetworkError)),
    "invalid_utf8": (invalid_utf8, (ResponseParsingError,)),
    "html_200": (html_page, (ResponseParsingError,)),
    "empty_body": (empty_body, (ResponseParsingError, NetworkError)),
    "error_object_200": (error_object, (ProviderError,)),
    "wrong_types": (wrong_types, (ResponseParsingError,)),
    "sse_garbage_line": (sse_garbage, (ResponseParsingError,)),
    "sse_never_ends": (sse_never_ends, (LLMTimeoutError,)),
    "oversized_sse_event": (oversized_event, (ResponseParsingError,)),
    "reset_mid_body": (reset_mid_body, (NetworkError,)),
    "429_seconds": (retry_after("7"), (RateLimitError,)),
    "429_http_date": (retry_after(_http_date(30)), (RateLimitError,)),
    "429_far_future": (retry_after("Fri, 31 Dec 99999 23:59:59 GMT"), (RateLimitError,)),
    "429_far_future_date": (retry_after(_http_date(10 * 365 * 86400)), (RateLimitError,)),
    "429_garbage": (retry_after("soon, promise"), (RateLimitError,)),
}


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    async with RawServer() as raw:
        yield raw


async def _run(provider: Any, stream: bool) -> None:
    if stream:
        async for _ in provider.chat_stream("hi"):
            pass
    else:
        await provider.chat("hi")


@pytest.mark.parametrize("mode", ["chat", "stream"])
@pytest.mark.parametrize("transport", ["native", "sdk"])
@pytest.mark.parametrize("vendor_name", list(VENDORS))
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_ends_in_a_typed_error(server: RawServer, fault: str, vendor_name: str, transport: str,
                                           mode: str) -> None:
    vendor = VENDORS[vendor_name]
    build, expected = FAULTS[fault]
    stream = mode == "stream"
    server.answer = build(vendor, stream)
    provider = vendor.provider_class()()
    await provider.initialize({"api_key": vendor.key, "base_url": server.url + vendor.path_suffix, "model": "m",
                               "transport": transport, "timeout": HANG_TIMEOUT, "max_event_bytes": MAX_EVENT})
    try:
        with pytest.raises(LLMError) as caught:
            await asyncio.wait_for(_run(provider, stream), 15)
    finally:
        await provider.cleanup()
    error = caught.value
    assert isinstance(error, expected), f"{type(error).__name__}: {error}"
    assert not isinstance(error, StreamInterruptedError)  # nothing had reached the caller
    assert error.provider == vendor.name
    assert vendor.key not in repr(error) and vendor.key not in str(error)
    if fault == "error_object_200":
        assert not isinstance(error, ResponseParsingError) and error.retryable, repr(error)
    if fault == "429_seconds":
        assert isinstance(error, RateLimitError) and error.retry_after == 7.0
    if fault == "429_http_date":
        assert isinstance(error, RateLimitError) and error.retry_after is not None and 20 < error.retry_after <= 31
    if fault.startswith("429_far_future"):
        assert isinstance(error, RateLimitError)
        assert error.retry_after is not None and 0 < error.retry_after <= 3600
    if fault == "429_garbage":
        assert isinstance(error, RateLimitError) and error.retry_after is None


# -- retryable faults fall back ----------------------------------------------------------------------------

#: Faults a fallback must absorb: the caller gets the fallback's answer, not an error.
RETRYABLE = ["truncated_json", "invalid_utf8", "html_200", "empty_body", "error_object_200", "wrong_types",
             "sse_garbage_line", "reset_mid_body", "429_seconds", "429_garbage"]


@pytest.fixture(scope="module")
def backup() -> Any:
    from spoon_llm.testing import ProviderSimulator

    with ProviderSimulator() as sim:
        yield sim


@pytest.mark.parametrize("mode", ["chat", "stream"])
@pytest.mark.parametrize("transport", ["native", "sdk"])
@pytest.mark.parametrize("vendor_name", list(VENDORS))
@pytest.mark.parametrize("fault", RETRYABLE)
async def test_retryable_faults_fall_back(server: RawServer, backup: Any, fault: str, vendor_name: str,
                                          transport: str, mode: str) -> None:
    from spoon_llm import ConfigurationManager
    from spoon_llm.manager import LLMManager
    from spoon_llm.testing import Reply

    vendor = VENDORS[vendor_name]
    stream = mode == "stream"
    server.answer = FAULTS[fault][0](vendor, stream)
    backup.reset()
    backup.script("openai", Reply(text="from the fallback"))
    config = ConfigurationManager({
        "providers": {
            "primary": {"type": vendor.name, "api_key": vendor.key, "base_url": server.url + vendor.path_suffix,
                        "model": "m", "transport": transport, "timeout": HANG_TIMEOUT},
            "backup": {"type": "openai", "api_key": "sk-test-backup-000000000001", "base_url": backup.openai_base_url,
                       "model": "backup-model"},
        },
        "default_provider": "primary",
        "fallback_chain": ["primary", "backup"],
        "retry": {"max_retries": 0},
    }, env={})
    manager = LLMManager(config, default_middleware=False)
    try:
        if stream:
            text = ""
            async for chunk in await asyncio.wait_for(_open_stream(manager), 15):
                text += chunk.delta or ""
        else:
            text = (await asyncio.wait_for(manager.chat("hi"), 15)).content
    finally:
        await manager.cleanup()
    assert text == "from the fallback"
    assert server.requests >= 1 and len(backup.requests) == 1


async def _open_stream(manager: Any) -> Any:
    return manager.chat_stream("hi")
