"""Property tests: whatever the bytes and however they are split, only ``LLMError``s come out.

* the SSE parser, fed random bytes in random pieces, raises nothing but ``LLMError``s, and a valid stream yields
  the same events whatever the split (including splits inside a CRLF or a UTF-8 sequence);
* each vendor's stream decoding, through the real provider on the SDK transport over an ``httpx2.MockTransport``
  (so no socket per example), fed random bytes or a valid stream split at random, raises only ``LLMError``s and
  yields the same chunks whatever the split;
* the configuration loader, fed random mutations of a valid TOML or JSON file, raises only
  ``ConfigurationError``.

Example counts are modest so the suite stays fast; ``deadline=None`` because a busy 2-core machine must not
fail a test by being slow.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spoon_llm import ConfigurationManager
from spoon_llm.errors import ConfigurationError, LLMError, ResponseTooLargeError
from spoon_llm.transport import SSEParser

from ._vendors import VENDORS, Vendor

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for point in points:
        out.append(data[last:point])
        last = point
    out.append(data[last:])
    return out


def _parse(parts: list[bytes], **limits: int) -> list[tuple[str | None, bytes]]:
    parser = SSEParser(**limits)
    events = []
    for part in parts:
        events.extend(parser.feed(part))
    events.extend(parser.close())
    return events


VALID_STREAMS = [v.stream_body() for v in VENDORS.values()] + [
    b": keep-alive\r\n\r\nevent: a\r\ndata: {\"x\": \"\xc3\xa9\xe9\x9b\xaa\"}\r\ndata: second line\r\n\r\n"
    b"id: 7\nretry: 10\ndata:no-space\n\n\rdata: cr only\r\rdata: tail-without-blank-line",
]


@SETTINGS
@given(stream=st.sampled_from(VALID_STREAMS), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_sse_parser_yields_the_same_events_whatever_the_split(stream: bytes, cuts: list[int]) -> None:
    assert _parse(_split(stream, cuts)) == _parse([stream])


@SETTINGS
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(min_value=0), max_size=8),
       cap=st.sampled_from([16, 64, 1 << 20]))
def test_sse_parser_raises_only_llm_errors_on_random_bytes(data: bytes, cuts: list[int], cap: int) -> None:
    try:
        whole = _parse([data], max_event_bytes=cap)
    except LLMError as exc:
        whole_error: type[LLMError] | None = type(exc)
    else:
        whole_error = None
    try:
        split = _parse(_split(data, cuts), max_event_bytes=cap)
    except LLMError as exc:
        # The size cap may trip on a different piece, but the same kind of failure trips either way.
        assert whole_error is not None and (type(exc) is whole_error or isinstance(exc, ResponseTooLargeError))
    else:
        if whole_error is None:
            assert split == whole


def test_sse_parser_is_linear_in_one_huge_event() -> None:
    # 48 MB in 64 KiB reads once took 12.5 s of re-scanning; now it is one pass (the cap is raised to fit).
    parser = SSEParser(max_event_bytes=64 << 20)
    piece = b"x" * 65536
    parser.feed(b"data: ")
    for _ in range(48 * 16):
        assert parser.feed(piece) == []
    events = parser.feed(b"\n\n")
    assert len(events) == 1 and len(events[0][1]) == 48 * 16 * 65536


def test_sse_parser_caps_one_event_and_the_stream() -> None:
    with pytest.raises(ResponseTooLargeError, match="max_event_bytes"):
        _parse([b"data: ", b"x" * 100], max_event_bytes=50)
    with pytest.raises(ResponseTooLargeError, match="max_stream_bytes"):
        _parse([b"data: 1\n\n"] * 20, max_stream_bytes=100)
    with pytest.raises(LLMError, match="not UTF-8"):
        _parse([b"event: \xff\xfe\ndata: 1\n\n"])


# -- the vendors' stream decoding, end to end through each provider -------------------------------------------


class _Pieces(httpx2.AsyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self._parts = parts

    async def __aiter__(self) -> Any:
        for part in self._parts:
            yield part


async def _stream_through(vendor: Vendor, parts: list[bytes]) -> list[tuple[str, str]]:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=_Pieces(parts))

    transport = httpx2.MockTransport(answer)
    if vendor.name == "openai":
        provider = vendor.provider_class()(http_transport=transport)
        http = None
    else:
        http = httpx2.AsyncClient(transport=transport)
        provider = vendor.provider_class()(http_client=http)
    await provider.initialize({"api_key": vendor.key, "base_url": "http://vendor.test" + vendor.path_suffix,
                               "model": "m", "transport": "sdk"})
    try:
        out = []
        async for chunk in provider.chat_stream("hi"):
            out.append((chunk.kind, chunk.delta or ""))
        return out
    finally:
        await provider.cleanup()
        if http is not None:
            await http.aclose()


def _outcome(vendor: Vendor, parts: list[bytes]) -> Any:
    try:
        return asyncio.run(_stream_through(vendor, parts))
    except LLMError as exc:
        return type(exc)


_WHOLE: dict[str, Any] = {}  # each vendor's unsplit outcome, computed once


@pytest.mark.parametrize("vendor_name", list(VENDORS))
@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=10))
def test_vendor_stream_chunks_do_not_depend_on_the_split(vendor_name: str, cuts: list[int]) -> None:
    vendor = VENDORS[vendor_name]
    body = vendor.stream_body()
    if vendor_name not in _WHOLE:
        _WHOLE[vendor_name] = _outcome(vendor, [body])
    whole = _WHOLE[vendor_name]
    assert isinstance(whole, list) and "".join(delta for kind, delta in whole if kind == "text") == "hello é 雪"
    assert _outcome(vendor, _split(body, cuts)) == whole


@pytest.mark.parametrize("vendor_name", list(VENDORS))
@settings(max_examples=25, deadline=None)
@given(data=st.one_of(
    st.binary(max_size=300),
    st.builds(lambda head, noise: head + noise, st.sampled_from([b"data: ", b"event: message_start\ndata: ",
                                                                 b"data: {\"choices\": ", b"data: {\"type\": "]),
              st.binary(max_size=200)),
), cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_vendor_stream_raises_only_llm_errors_on_random_bytes(vendor_name: str, data: bytes,
                                                              cuts: list[int]) -> None:
    outcome = _outcome(VENDORS[vendor_name], _split(data, cuts))  # anything but an LLMError propagates
    assert isinstance(outcome, list) or issubclass(outcome, LLMError)


# -- the configuration loader -------------------------------------------------------------------------------

VALID_TOML = b"""
default_provider = "openai"
fallback_chain = ["openai", "anthropic"]
request_timeout = 30

[providers.openai]
api_key = "sk-test-config-000000000001"
model = "gpt-4o-mini"
timeout = 20
max_connections = 50

[providers.anthropic]
api_key = "sk-ant-test-config-0000001"
model = "claude-sonnet-4-5"

[retry]
max_retries = 2

[state]
backend = "memory"
fail_mode = "open"
"""

VALID_JSON = json.dumps({
    "default_provider": "openai",
    "providers": {"openai": {"api_key": "sk-test-config-000000000001", "model": "gpt-4o-mini", "timeout": 20},
                  "gemini": {"api_key": "AIzaSyTEST-config-000000000000", "models": ["gemini-2.5-flash"]}},
    "models": {"fast": {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}},
    "budget": {"limit": 5.0},
}, indent=1).encode()

_MUTATIONS = st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "repeat"]), st.integers(min_value=0),
                                st.binary(min_size=1, max_size=8)), min_size=1, max_size=6)


def _mutate(data: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for kind, where, payload in mutations:
        at = where % (len(buf) + 1)
        if kind == "flip" and at < len(buf):
            buf[at] ^= payload[0] or 1
        elif kind == "insert":
            buf[at:at] = payload
        elif kind == "delete":
            del buf[at:at + len(payload)]
        elif kind == "repeat":
            buf[at:at] = bytes(buf[at:at + 64 * len(payload)])
    return bytes(buf)


def _load(path: Path) -> None:
    try:
        ConfigurationManager(path, env={}, provider_names=["openai", "anthropic", "gemini"])
    except ConfigurationError as exc:
        assert str(path) in str(exc) or exc.source, repr(exc)  # it names where the problem is


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=_MUTATIONS)
def test_config_loader_raises_only_configuration_errors(tmp_path: Path, suffix: str,
                                                        mutations: list[tuple[str, int, bytes]]) -> None:
    path = tmp_path / f"mutated{suffix}"
    path.write_bytes(_mutate(VALID_TOML if suffix == ".toml" else VALID_JSON, mutations))
    _load(path)  # anything but a ConfigurationError propagates and fails the test


@pytest.mark.parametrize(("name", "content"), [
    ("latin1.toml", 'default_provider = "caf\xe9"\n'.encode("latin-1")),
    ("bom.json", b"\xff\xfe{}"),
    ("huge.json", b'{"request_timeout": ' + b"9" * 5000 + b"}"),
    ("huge.toml", b"request_timeout = " + b"9" * 5000 + b"\n"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000),
    ("deep.toml", b"x = " + b"[" * 50_000 + b"]" * 50_000 + b"\n"),
    ("float-providers.toml", b"providers = 1.5\n"),
    ("list-providers.json", b'{"providers": [1, 2]}'),
    ("string-provider.json", b'{"providers": {"openai": "sk-nope"}}'),
    ("null-models.json", b'{"models": {"fast": null}}'),
    ("top-list.json", b"[1, 2, 3]"),
])
def test_config_loader_names_the_file_for_each_input_error(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigurationError) as info:
        ConfigurationManager(path, env={}, provider_names=["openai"])
    assert str(path) in str(info.value)
