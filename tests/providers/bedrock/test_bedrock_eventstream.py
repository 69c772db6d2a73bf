"""The event-stream decoder: every recorded Bedrock stream, split at every byte; corrupt bytes; in-stream exceptions.

The bytes come from the simulator's encoder (the corpus README's replay encoder), which botocore's parser was
checked against when the corpus was built; here our decoder must give back exactly the recorded frames however the
body is cut into pieces, and refuse what is not an event stream.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from typing import Any

import pytest

from spoon_llm.errors import (
    InvalidRequestError,
    NetworkError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseParsingError,
    ServiceUnavailableError,
    StreamInterruptedError,
)
from spoon_llm.providers.bedrock._eventstream import EventStreamDecoder, EventStreamError, Frame
from spoon_llm.streaming import collect_stream
from spoon_llm.testing import Fault, ProviderSimulator, load_conformance
from spoon_llm.testing._bedrock import EVENTSTREAM, eventstream_frames, eventstream_message

STREAMS = [case for case in load_conformance("bedrock") if "eventstream" in case.response]


def _expected(items: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    return [(item["event"], item["data"].encode()) for item in items]


def _seen(frames: list[Frame]) -> list[tuple[str | None, bytes]]:
    return [(frame.event_type, frame.payload) for frame in frames]


def _stream_params() -> list[Any]:
    if not STREAMS:
        return [pytest.param(None, marks=pytest.mark.skip(reason="conformance corpus not found"))]
    return [pytest.param(case, id=case.name) for case in STREAMS]


@pytest.mark.parametrize("case", _stream_params())
def test_every_recorded_stream_decodes_fed_whole_and_byte_by_byte(case: Any) -> None:
    items = case.response["eventstream"]
    data = b"".join(eventstream_frames(items))
    whole = EventStreamDecoder()
    assert _seen(whole.feed(data)) == _expected(items)
    whole.close()
    one_by_one = EventStreamDecoder()
    frames: list[Frame] = []
    for i in range(len(data)):
        frames.extend(one_by_one.feed(data[i:i + 1]))
    one_by_one.close()
    assert _seen(frames) == _expected(items)
    assert all(frame.message_type == "event" for frame in frames)
    assert all(frame.headers[":content-type"] == "application/json" for frame in frames)


def test_a_stream_split_in_two_at_every_byte() -> None:
    if not STREAMS:
        pytest.skip("conformance corpus not found")
    case = min(STREAMS, key=lambda c: len(b"".join(eventstream_frames(c.response["eventstream"]))))
    items = case.response["eventstream"]
    data = b"".join(eventstream_frames(items))
    for cut in range(len(data) + 1):
        decoder = EventStreamDecoder()
        frames = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        decoder.close()
        assert _seen(frames) == _expected(items), cut


def _message(headers: bytes, payload: bytes) -> bytes:
    prelude = struct.pack(">II", 16 + len(headers) + len(payload), len(headers))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _header(name: str, kind: int, value: bytes) -> bytes:
    return bytes([len(name)]) + name.encode() + bytes([kind]) + value


def test_every_header_type() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = b"".join([
        _header("t", 0, b""), _header("f", 1, b""), _header("b", 2, struct.pack(">b", -5)),
        _header("s", 3, struct.pack(">h", -300)), _header("i", 4, struct.pack(">i", 70000)),
        _header("l", 5, struct.pack(">q", 2**40)), _header("a", 6, struct.pack(">H", 3) + b"\x00\x01\x02"),
        _header("str", 7, struct.pack(">H", 2) + b"hi"), _header("ts", 8, struct.pack(">q", 1700000000000)),
        _header("u", 9, ident.bytes),
    ])
    [frame] = EventStreamDecoder().feed(_message(headers, b"{}"))
    assert frame.headers == {"t": True, "f": False, "b": -5, "s": -300, "i": 70000, "l": 2**40,
                             "a": b"\x00\x01\x02", "str": "hi", "ts": 1700000000000, "u": ident.bytes}
    assert frame.payload == b"{}" and frame.message_type == "event" and frame.event_type is None


@pytest.mark.parametrize("position", ["prelude", "message", "headers"])
def test_corrupt_bytes_are_refused(position: str) -> None:
    data = bytearray(eventstream_message("contentBlockDelta", b'{"delta":{"text":"hi"}}'))
    if position == "prelude":
        data[2] ^= 0x01  # the total length changes: the prelude CRC no longer matches
    elif position == "message":
        data[-6] ^= 0x01  # a payload byte: the message CRC no longer matches
    else:
        data[12] = 200  # the first header's name runs past the headers
        body = bytes(data[:-4])
        data = bytearray(body + struct.pack(">I", zlib.crc32(body)))
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(bytes(data))


def test_an_impossible_length_fails_at_the_prelude() -> None:
    prelude = struct.pack(">II", 64 * 1024 * 1024, 0)
    with pytest.raises(EventStreamError, match="impossible"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))


def test_a_body_that_stops_inside_a_message_is_reported_on_close() -> None:
    data = eventstream_message("messageStop", b'{"stopReason":"end_turn"}')
    decoder = EventStreamDecoder()
    assert decoder.feed(data[:-3]) == []
    assert decoder.pending == len(data) - 3
    with pytest.raises(EventStreamError, match="inside a message"):
        decoder.close()


# -- through the provider ---------------------------------------------------------------------------------


def _stream_case(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"provider": "bedrock", "kind": "chat_stream",
            "request": {"method": "POST", "path": "/model/m/converse-stream", "body": {}},
            "response": {"status": 200, "content_type": EVENTSTREAM, "headers": {"content-type": EVENTSTREAM},
                         "eventstream": items}}


_START = [{"event": "messageStart", "data": '{"role":"assistant"}'},
          {"event": "contentBlockDelta", "data": '{"contentBlockIndex":0,"delta":{"text":"Hel"}}'}]


@pytest.mark.parametrize(("exception", "error_class", "retryable"), [
    ("throttlingException", RateLimitError, True),
    ("serviceUnavailableException", ServiceUnavailableError, True),
    ("internalServerException", ProviderUnavailableError, True),
    ("modelStreamErrorException", ProviderUnavailableError, False),
    ("validationException", InvalidRequestError, False),
])
@pytest.mark.parametrize("after_text", [False, True])
async def test_exceptions_inside_the_stream_are_typed_errors(sim: ProviderSimulator, make_provider: Any,
                                                             exception: str, error_class: type[Exception],
                                                             retryable: bool, after_text: bool) -> None:
    frame = {"event": exception, "message_type": "exception", "data": '{"message":"Simulated in-stream error."}'}
    sim.replay(_stream_case([*(_START if after_text else []), frame]))
    provider = await make_provider()
    seen: list[str] = []
    with pytest.raises(error_class) as info:
        async for chunk in provider.chat_stream("hi"):
            seen.append(chunk.delta)
    error = info.value
    assert type(error) is error_class
    assert error.error_type == exception[0].upper() + exception[1:]  # type: ignore[attr-defined]
    assert error.message == "Simulated in-stream error."  # type: ignore[attr-defined]
    assert error.retryable is retryable  # type: ignore[attr-defined]
    assert seen == (["Hel"] if after_text else [])


async def test_a_corrupt_stream_is_a_parsing_error(sim: ProviderSimulator, make_provider: Any) -> None:
    sim.fault("bedrock", Fault(malformed=True))
    provider = await make_provider()
    with pytest.raises(ResponseParsingError):
        await collect_stream(provider.chat_stream("hello there, simulator"))


async def test_a_cut_stream_is_a_network_error_or_an_interruption(sim: ProviderSimulator,
                                                                  make_provider: Any) -> None:
    provider = await make_provider()
    sim.fault("bedrock", Fault(truncate_after=0))
    with pytest.raises(NetworkError) as before:
        await collect_stream(provider.chat_stream("hello there, simulator"))
    assert not isinstance(before.value, StreamInterruptedError) and before.value.retryable
    sim.fault("bedrock", Fault(truncate_after=3))
    with pytest.raises(StreamInterruptedError) as after:
        await collect_stream(provider.chat_stream("hello there, simulator"))
    assert after.value.partial_content


def test_a_large_message_in_many_pieces_then_small_ones_in_one() -> None:
    payload = b'{"delta":{"text":"' + b"x" * 1_000_000 + b'"}}'
    big = eventstream_message("contentBlockDelta", payload)
    small = b"".join(eventstream_message("contentBlockDelta", b'{"n":%d}' % i) for i in range(5))
    decoder = EventStreamDecoder()
    frames: list[Frame] = []
    for i in range(0, len(big), 4096):
        frames.extend(decoder.feed(big[i:i + 4096]))
        assert decoder.pending == (0 if frames else min(i + 4096, len(big)))
    assert [f.payload for f in frames] == [payload]
    assert [f.payload for f in decoder.feed(small)] == [b'{"n":%d}' % i for i in range(5)]
    decoder.close()


@pytest.mark.parametrize("stop_reason", [7, 2.5, True, ["end_turn"]])
def test_a_stop_reason_that_is_not_text_ends_the_stream_as_other(stop_reason: Any) -> None:
    # Found by the random-bytes property test: a messageStop whose stopReason is a number broke the final chunk
    # with a pydantic error instead of ending the stream.
    from spoon_llm.providers._stream import StreamAccumulator
    from spoon_llm.providers.bedrock._decode import ConverseStreamDecoder

    acc = StreamAccumulator("bedrock", "m")
    decoder = ConverseStreamDecoder(acc)
    decoder.feed("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}})
    decoder.feed("messageStop", {"stopReason": stop_reason})
    final = acc.final_chunk()
    assert (final.finish_reason, final.native_finish_reason) == ("other", str(stop_reason))
    assert final.content == "hi"
