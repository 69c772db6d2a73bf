"""Stream chunks built without validation (deltas, the final chunk) are the chunks validation would build; the
SSE parser's one-event read.

The accumulator builds text, reasoning and tool chunks without running pydantic over values it made itself; a
chunk must still compare, print, dump and track its set fields exactly as ``LLMResponseChunk(**fields)`` would, and
a vendor value of the wrong type must still be refused as before.
"""

from __future__ import annotations

import pytest

from spoon_llm.errors import ResponseTooLargeError
from spoon_llm.providers._stream import StreamAccumulator
from spoon_llm.transport import SSEParser
from spoon_llm.types import FunctionCall, LLMResponseChunk, TokenUsage, ToolCall


def _accumulator() -> StreamAccumulator:
    acc = StreamAccumulator("openai", "gpt-4o-mini")
    acc.request_id = "chatcmpl-1"
    return acc


def _same(built: LLMResponseChunk, validated: LLMResponseChunk) -> None:
    assert built == validated
    assert repr(built) == repr(validated)
    assert built.model_dump() == validated.model_dump()
    assert built.model_fields_set == validated.model_fields_set
    assert list(built.__dict__) == list(validated.__dict__)  # field order (repr, iteration)


def test_text_reasoning_and_tool_chunks_equal_validated_ones() -> None:
    acc = _accumulator()
    _same(acc.text("Hello"), LLMResponseChunk(provider="openai", model="gpt-4o-mini", content="Hello",
                                              request_id="chatcmpl-1", kind="text", delta="Hello"))
    _same(acc.reasoning("hm"), LLMResponseChunk(provider="openai", model="gpt-4o-mini", content="Hello",
                                                request_id="chatcmpl-1", kind="reasoning", reasoning_delta="hm"))
    partial = ToolCall.model_construct(id="call_1", function=FunctionCall.model_construct(name="f", arguments="{"))
    _same(acc.tool_delta(0, id="call_1", name="f", arguments="{"),
          LLMResponseChunk(provider="openai", model="gpt-4o-mini", content="Hello", request_id="chatcmpl-1",
                           kind="tool", tool_call_index=0, delta="", tool_calls=[partial]))
    final = acc.final_chunk()
    assert final.kind == "final" and final.tool_calls[0].function.arguments == "{"


def test_no_request_id_is_kept_as_none() -> None:
    acc = StreamAccumulator("anthropic", "claude")
    _same(acc.text("x"), LLMResponseChunk(provider="anthropic", model="claude", content="x", request_id=None,
                                          kind="text", delta="x"))


def test_each_chunk_has_its_own_containers() -> None:
    acc = _accumulator()
    first, second = acc.text("a"), acc.text("b")
    first.metadata = {"deployment": "primary"}
    first.metadata["more"] = 1
    assert second.metadata == {} and "metadata" not in second.model_fields_set
    assert "metadata" in first.model_fields_set
    assert first.tool_calls is not second.tool_calls
    assert acc.chunk_count == 2


def test_the_final_chunk_equals_the_validated_one() -> None:
    acc = _accumulator()
    acc.text("Hi")
    acc.tool_delta(0, id="call_1", name="f", arguments='{"a": 1}')
    acc.set_usage(TokenUsage(input_tokens=3, output_tokens=4))
    acc.set_finish("tool_calls", "tool_calls")
    acc.metadata["id"] = "chatcmpl-1"
    final = acc.final_chunk()
    _same(final, LLMResponseChunk(provider="openai", model="gpt-4o-mini", content="Hi", request_id="chatcmpl-1",
                                  kind="final", finish_reason="tool_calls", native_finish_reason="tool_calls",
                                  tool_calls=acc.tool_calls, usage=acc.usage, metadata={"id": "chatcmpl-1"}))
    assert final.metadata is not acc.metadata and final.usage is acc.usage
    final.metadata["cost"] = 1.0  # the caller's to change: the accumulator's own stays as it was
    assert acc.metadata == {"id": "chatcmpl-1"}
    assert acc.chunk_count == 3


def test_a_final_chunk_with_a_vendor_value_of_another_type_is_validated() -> None:
    acc = _accumulator()
    acc.text("Hi")
    acc.model = 5  # type: ignore[assignment]  # a vendor's "model": 5
    with pytest.raises(ValueError):
        acc.final_chunk()
    acc = _accumulator()
    acc.finish_reason = None
    _same(acc.final_chunk(), LLMResponseChunk(provider="openai", model="gpt-4o-mini", content="",
                                              request_id="chatcmpl-1", kind="final", finish_reason=None,
                                              native_finish_reason=None, tool_calls=[], usage=None, metadata={}))


def test_vendor_values_of_another_type_are_still_refused() -> None:
    acc = _accumulator()
    acc.model = 5  # type: ignore[assignment]  # a vendor's "model": 5
    with pytest.raises(ValueError):
        acc.text("x")
    acc = _accumulator()
    with pytest.raises(ValueError):
        acc.reasoning(["not", "text"])  # type: ignore[arg-type]


@pytest.mark.parametrize("read", [b"data: {}\n\n", b"data: a\ndata: b\n\n", b"data: a\r\n\r\n", b"data: \n\n",
                                  b"data: x\n\ndata: y\n\n", b"event: e\ndata: x\n\n", b"data: x\r\n\n"])
def test_a_read_of_whole_events_parses_as_the_same_bytes_split_up(read: bytes) -> None:
    whole = SSEParser().feed(read)
    split = SSEParser()
    events = [event for byte in range(len(read)) for event in split.feed(read[byte:byte + 1])]
    assert whole == events + split.close()


def test_a_single_event_read_over_the_event_cap_is_refused() -> None:
    parser = SSEParser(max_event_bytes=16)
    with pytest.raises(ResponseTooLargeError):
        parser.feed(b"data: " + b"x" * 32 + b"\n\n")


def test_a_text_chunk_spells_every_field_in_order() -> None:
    # text() writes the chunk's fields out by hand: a field added to LLMResponseChunk must be added there too.
    assert list(_accumulator().text("x").__dict__) == list(LLMResponseChunk.model_fields)
