"""Pure stream mapping: SSE bytes -> events, chat/completion chunks -> our chunks (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spoon_llm.errors import InvalidRequestError, ProviderUnavailableError, ResponseParsingError
from spoon_llm.providers.openai._stream import ChatStreamDecoder, CompletionStreamDecoder
from spoon_llm.transport import TextSSEParser
from spoon_llm.types import LLMResponseChunk

STREAM = (
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\r\n\r\n'
    b"event: message\ndata: {\"choices\":[{\"index\":0,\n"
    b'data: "delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def events_for(splits: list[bytes]) -> list[tuple[str | None, str]]:
    decoder = TextSSEParser()
    out = []
    for piece in splits:
        out.extend(decoder.feed(piece))
    out.extend(decoder.close())
    return out


def test_sse_events_whole() -> None:
    events = events_for([STREAM])
    assert [e for e, _ in events] == [None, None, "message", None]
    assert json.loads(events[2][1])["choices"][0]["delta"] == {"content": "lo"}
    assert events[-1][1] == "[DONE]"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_sse_events_survive_any_chunking(size: int) -> None:
    pieces = [STREAM[i:i + size] for i in range(0, len(STREAM), size)]
    assert events_for(pieces) == events_for([STREAM])


def test_sse_bare_cr_and_unterminated_last_event() -> None:
    assert events_for([b"data: a\r\rdata: b"]) == [(None, "a"), (None, "b")]
    assert events_for([b"id: 1\nretry: 5\ndata:x\n\n"]) == [(None, "x")]


def feed_all(decoder: ChatStreamDecoder, chunks: list[dict[str, Any]]) -> list[LLMResponseChunk]:
    out = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def delta(index: int = 0, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": index, "delta": fields, "finish_reason": finish}]}


def test_text_usage_and_finish_on_the_final_chunk() -> None:
    decoder = ChatStreamDecoder("openai", "gpt-4o", request_id="req_1")
    chunks = feed_all(decoder, [
        {"id": "c", "model": "gpt-4o-2024", **delta(role="assistant", content="")},
        delta(content="Hi"), delta(content=" there", finish="stop"),
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
        {"choices": [], "usage": None},  # a later null must not erase usage
    ])
    assert [c.delta for c in chunks] == ["Hi", " there"]  # empty deltas yield nothing
    assert chunks[-1].content == "Hi there"
    final = decoder.final_chunk()
    assert final.kind == "final" and final.finish_reason == "stop" and final.native_finish_reason == "stop"
    assert final.usage is not None and final.usage.total_tokens == 7
    assert final.model == "gpt-4o-2024" and final.request_id == "req_1"
    assert decoder.to_response().content == "Hi there"


def test_tool_call_fragments_are_merged_by_index() -> None:
    decoder = ChatStreamDecoder("openai", "gpt-4o")
    chunks = feed_all(decoder, [
        delta(tool_calls=[{"index": 0, "id": "call_a", "type": "function",
                           "function": {"name": "get_weather", "arguments": ""}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city":'}}]),
        delta(tool_calls=[{"index": 1, "id": "call_b", "function": {"name": "get_time", "arguments": "{}"}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": ' "Paris"}'}}]),
        delta(finish="tool_calls"),
    ])
    assert {c.kind for c in chunks} == {"tool"} and [c.tool_call_index for c in chunks] == [0, 0, 1, 0]
    calls = decoder.final_chunk().tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_a", "get_weather", {"city": "Paris"}), ("call_b", "get_time", {})]
    assert decoder.acc.finish_reason == "tool_calls"


def test_a_new_id_on_a_reused_index_starts_a_new_call() -> None:
    decoder = ChatStreamDecoder("vllm", "m")
    feed_all(decoder, [
        delta(tool_calls=[{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]),
        delta(tool_calls=[{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]),
        delta(tool_calls=[{"id": "c", "function": {"name": "h"}}]),  # no index: its position
    ])
    assert [c.id for c in decoder.final_chunk().tool_calls] == ["a", "b", "c"]


def test_legacy_function_call_deltas() -> None:
    decoder = ChatStreamDecoder("openai", "gpt-3.5-turbo")
    feed_all(decoder, [delta(function_call={"name": "f", "arguments": ""}),
                       delta(function_call={"arguments": '{"a":1}'}), delta(finish="function_call")])
    final = decoder.final_chunk()
    assert [(c.id, c.name, c.arguments) for c in final.tool_calls] == [(None, "f", {"a": 1})]
    assert final.finish_reason == "tool_calls"


def test_reasoning_refusal_annotations_and_openrouter_extras() -> None:
    decoder = ChatStreamDecoder("openrouter", "x/y")
    chunks = feed_all(decoder, [
        delta(reasoning="thinking ", reasoning_details=[{"type": "reasoning.text", "text": "thinking ", "index": 0}]),
        delta(reasoning_content="more"),
        delta(reasoning_details=[{"type": "reasoning.text", "text": "...", "index": 0, "signature": "sig"}]),
        delta(refusal="no"),
        delta(annotations=[{"type": "url_citation"}]),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "native_finish_reason": "end_turn"}],
         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.01}},
    ])
    assert "".join(c.reasoning_delta for c in chunks) == "thinking more"
    meta = decoder.final_chunk().metadata
    assert meta["native_finish_reason"] == "end_turn" and meta["refusal"] == "no"
    assert meta["annotations"] == [{"type": "url_citation"}] and meta["cost"] == 0.01
    assert meta["provider_data"]["reasoning_details"] == [
        {"type": "reasoning.text", "text": "thinking ...", "index": 0, "signature": "sig"}]
    response = decoder.to_response()
    assert response.reasoning == "thinking more" and response.refusal == "no"
    assert response.cost is not None and response.cost.total_cost == 0.01


def test_other_choices_are_kept_in_metadata() -> None:
    decoder = ChatStreamDecoder("openai", "m")
    chunks = feed_all(decoder, [delta(0, content="a"), delta(1, content="b"), delta(1, content="c", finish="stop"),
                                delta(0, finish="stop")])
    assert "".join(c.delta for c in chunks) == "a"
    meta = decoder.final_chunk().metadata
    assert meta["n_choices"] == 2 and meta["choices"][1] == {"index": 1, "content": "bc", "finish_reason": "stop"}


def test_in_band_error_is_mapped_with_the_chunk_as_body() -> None:
    decoder = ChatStreamDecoder("openrouter", "m")
    decoder.feed(delta(content="partial"))
    assert decoder.error is None
    decoder.feed({"error": {"code": 400, "message": "Token limit reached"}, "choices": [],
                  "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    assert isinstance(decoder.error, InvalidRequestError)
    assert decoder.error.status_code == 400 and decoder.error.message == "Token limit reached"
    assert decoder.error.body["usage"]["prompt_tokens"] == 1
    decoder = ChatStreamDecoder("vllm", "m")
    decoder.feed({"error": {"message": "boom", "type": "server_error"}})
    assert isinstance(decoder.error, ProviderUnavailableError) and decoder.error.status_code is None


def test_a_chunk_that_is_not_an_object_is_a_parsing_error() -> None:
    with pytest.raises(ResponseParsingError):
        ChatStreamDecoder("openai", "m").feed([1, 2])  # type: ignore[arg-type]


def test_completion_stream_decoder() -> None:
    decoder = CompletionStreamDecoder("openai", "davinci-002")
    chunks = feed_all(decoder, [{"model": "davinci-002", "choices": [{"index": 0, "text": "Hel"}]},
                                {"choices": [{"index": 0, "text": "lo", "finish_reason": "length"}]},
                                {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}])
    assert "".join(c.delta for c in chunks) == "Hello"
    final = decoder.final_chunk()
    assert final.finish_reason == "length" and final.usage is not None and final.usage.output_tokens == 2
