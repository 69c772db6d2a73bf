"""The one provider skeleton: the ``providers/openai/`` package, the shared SSE loop, the error seam, the life cycle.

The stream loop is driven here with a real in-memory response (bytes in any chunking) and the vendors' real
decoders; the life-cycle tests run OpenAI-compatible providers against the simulator on both transports.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import spoon_llm.providers as providers_pkg
from spoon_llm import errors as ours
from spoon_llm.providers._common import DualTransportProvider
from spoon_llm.providers._sse_stream import JsonEvents, sse_stream
from spoon_llm.providers._stream import StreamAccumulator
from spoon_llm.providers._transport import ErrorScope, error_body, json_answer
from spoon_llm.providers.anthropic._decode import StreamDecoder as AnthropicDecoder
from spoon_llm.providers.openai._stream import ChatStreamDecoder
from spoon_llm.testing import ProviderSimulator
from spoon_llm.transport import SSEParser

KEY = "sk-test-skeleton-000000001"


class Body:
    """An open streamed answer whose body arrives in the given pieces, then ``fault`` (if any) is raised."""

    def __init__(self, pieces: list[bytes], fault: Exception | None = None) -> None:
        self.headers: Mapping[str, str] = {"content-type": "text/event-stream"}
        self._pieces = pieces
        self._fault = fault
        self.closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece
        if self._fault is not None:
            raise self._fault

    async def aread(self) -> bytes:
        return b"".join(self._pieces)

    async def aclose(self) -> None:
        self.closed = True


class Recorder:
    """An :class:`EventDecoder` that records what the loop hands it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, bytes, bool]] = []

    def event(self, name: str | None, data: bytes, last: bool) -> list[str]:
        self.seen.append((name, data, last))
        return [data.decode()]

    def end(self) -> list[str]:
        return ["end"]


def parser() -> SSEParser:
    return SSEParser(provider="test", model="m")


async def drain(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


def _unchanged(exc: Exception) -> Exception:
    return exc


# -- the shared SSE loop ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
async def test_the_loop_frames_any_chunking_and_ends_with_the_decoders_closing_items(size: int) -> None:
    raw = b"event: a\ndata: one\n\ndata: two\n\ndata: three"  # the last event has no closing blank line
    body = Body([raw[i:i + size] for i in range(0, len(raw), size)])
    decoder = Recorder()
    out = await drain(sse_stream(body, decoder, parser(), _unchanged))
    assert out == ["one", "two", "three", "end"]
    assert decoder.seen == [("a", b"one", False), (None, b"two", False), (None, b"three", True)]


async def test_a_read_failure_is_mapped_by_fail_and_chained_to_the_original() -> None:
    original = ConnectionResetError("reset by peer")
    mapped = ours.NetworkError("connection lost", provider="test")
    body = Body([b"data: one\n\n"], fault=original)
    with pytest.raises(ours.NetworkError) as info:
        await drain(sse_stream(body, Recorder(), parser(), lambda exc: mapped if exc is original else exc))
    assert info.value is mapped and info.value.__cause__ is original


async def test_a_failure_fail_lets_through_is_raised_unchanged() -> None:
    error = ours.TimeoutError("read timed out", provider="test")
    with pytest.raises(ours.TimeoutError) as info:
        await drain(sse_stream(Body([b"data: one\n\n"], fault=error), Recorder(), parser(), _unchanged))
    assert info.value is error and info.value.__cause__ is None


async def test_the_openai_decoder_drains_after_done_and_reports_a_cut_stream() -> None:
    chunk = b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    finish = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    whole = Body([chunk, finish, b"data: [DONE]\n\n", b'data: {"late": true}\n\n'])
    out = await drain(sse_stream(whole, ChatStreamDecoder("openai", "m"), parser(), _unchanged))
    assert [c.kind for c in out] == ["text", "final"] and out[-1].finish_reason == "stop"
    with pytest.raises(ours.StreamInterruptedError) as cut:
        await drain(sse_stream(Body([chunk, b'data: {"cho']), ChatStreamDecoder("openai", "m"), parser(),
                               _unchanged))
    assert cut.value.partial_content == "Hi"
    with pytest.raises(ours.ResponseParsingError):
        await drain(sse_stream(Body([b"data: not json\n\n"]), ChatStreamDecoder("openai", "m"), parser(),
                               _unchanged))


def _anthropic_events(undecodable_is_cut: bool = False) -> tuple[JsonEvents, StreamAccumulator]:
    acc = StreamAccumulator("anthropic", "claude")
    return JsonEvents(AnthropicDecoder(acc), acc, provider="anthropic", model="claude",
                      closing_event="message_stop", undecodable_is_cut=undecodable_is_cut), acc


TEXT = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,' \
       b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


async def test_json_events_close_with_the_final_chunk_only_after_the_closing_event() -> None:
    events, _ = _anthropic_events()
    out = await drain(sse_stream(Body([TEXT, STOP]), events, parser(), _unchanged))
    assert [c.kind for c in out] == ["text", "final"] and out[-1].content == "Hi"
    events, _ = _anthropic_events()
    with pytest.raises(ours.NetworkError) as early:  # nothing reached the caller: retryable
        await drain(sse_stream(Body([]), events, parser(), _unchanged))
    assert "message_stop" in early.value.message and early.value.retryable
    events, _ = _anthropic_events()
    with pytest.raises(ours.StreamInterruptedError) as late:
        await drain(sse_stream(Body([TEXT]), events, parser(), _unchanged))
    assert late.value.partial_content == "Hi"


async def test_json_events_tell_a_bad_event_from_a_cut_one() -> None:
    events, _ = _anthropic_events()
    with pytest.raises(ours.ResponseParsingError) as bad:
        await drain(sse_stream(Body([b"data: {oops\n\n"]), events, parser(), _unchanged))
    assert not isinstance(bad.value, ours.NetworkError)
    events, _ = _anthropic_events(undecodable_is_cut=True)
    with pytest.raises(ours.NetworkError):
        await drain(sse_stream(Body([b"data: {oops\n\n"]), events, parser(), _unchanged))
    events, _ = _anthropic_events()
    with pytest.raises(ours.NetworkError):  # the body ended inside the event
        await drain(sse_stream(Body([b'data: {"type":"mess']), events, parser(), _unchanged))
    events, _ = _anthropic_events()
    with pytest.raises(ours.ResponseParsingError, match="unexpected stream event"):
        await drain(sse_stream(Body([b'data: {"type":"content_block_delta"}\n\n']), events, parser(), _unchanged))


# -- the error seam --------------------------------------------------------------------------------------------


def _translate(seen: list[BaseException]) -> Any:
    def translate(exc: BaseException, model: str | None) -> ours.LLMError | None:
        seen.append(exc)
        if isinstance(exc, ConnectionError):
            return ours.NetworkError(f"mapped for {model}", provider="test", model=model)
        return None
    return translate


async def test_the_error_scope_maps_in_sync_and_async_blocks_and_shows_our_own_errors_to_translate() -> None:
    seen: list[BaseException] = []
    original = ConnectionError("refused")
    with pytest.raises(ours.NetworkError) as info:
        with ErrorScope(_translate(seen), "m"):
            raise original
    assert info.value.__cause__ is original and info.value.model == "m"
    with pytest.raises(ours.NetworkError):
        async with ErrorScope(_translate(seen), "m"):
            raise ConnectionError("refused")
    ours_already = ours.AuthenticationError("bad key", provider="test")
    with pytest.raises(ours.AuthenticationError) as kept:
        async with ErrorScope(_translate(seen), "m"):
            raise ours_already
    assert kept.value is ours_already and seen[-1] is ours_already  # Vertex AI drops a refused token here
    with pytest.raises(KeyError):
        with ErrorScope(_translate(seen), "m"):
            raise KeyError("not a transport failure")


def test_bodies_decode_as_the_sdks_keep_them() -> None:
    assert error_body(b' {"error": {"message": "x"}} \n') == {"error": {"message": "x"}}
    assert error_body(b"<html>bad gateway</html>") == "<html>bad gateway</html>"
    assert json_answer(b'{"a": 1}', provider="p", model="m") == {"a": 1}
    with pytest.raises(ours.ResponseParsingError, match="not valid JSON"):
        json_answer(b"<html>", provider="p", model="m")


# -- the package layout and the shared life cycle --------------------------------------------------------------


def test_the_openai_package_keeps_every_import_path() -> None:
    openai_pkg = importlib.import_module("spoon_llm.providers.openai")
    assert hasattr(openai_pkg, "__path__")  # a package, like anthropic/ and gemini/
    compat = importlib.import_module("spoon_llm.providers.openai_compatible_provider")
    older = importlib.import_module("spoon_llm.providers.openai_provider")
    assert compat.OpenAICompatibleProvider is openai_pkg.OpenAICompatibleProvider
    assert older.OpenAIProvider is openai_pkg.OpenAIProvider
    assert issubclass(openai_pkg.OpenAICompatibleProvider, DualTransportProvider)


def test_every_provider_module_stays_small() -> None:
    root = Path(providers_pkg.__file__).parent
    sizes = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 600} == {}
    names = {m.name for m in pkgutil.iter_modules([str(root)])}
    assert not {n for n in names if n.startswith("_openai_")}  # the flat modules live in openai/ now


@pytest.mark.parametrize("transport", ["native", "sdk"])
async def test_openai_compatible_deployments_share_the_skeletons_life_cycle(transport: str) -> None:
    from spoon_llm.providers.openai import OpenAICompatibleProvider

    with ProviderSimulator() as sim:
        provider = OpenAICompatibleProvider()
        await provider.initialize({"name": "local", "transport": transport, "base_url": sim.openai_base_url,
                                   "api_key": KEY, "model": "gpt-4o-mini"})
        assert provider.transport_name == transport
        answer = await provider.chat("hi")
        assert answer.content and answer.provider == "local"
        client = await provider.sdk_client()
        assert await provider.sdk_client() is client and client.max_retries == 0
        assert (await client.models.list()).data
        http = client._client  # the SDK's HTTP client: closed by cleanup on either transport
        await provider.cleanup()
        assert http.is_closed
        await provider.cleanup()  # a second cleanup releases nothing twice
        with pytest.raises(ours.ConfigurationError, match="not initialised"):
            await provider.chat("hi")
