"""The Responses API wire mapping as pure functions: request shapes in, stream events and bodies out."""

from __future__ import annotations

from typing import Any

import pytest

from spoon_llm.errors import ProviderUnavailableError, RateLimitError, ValidationError
from spoon_llm.providers._stream import StreamAccumulator
from spoon_llm.providers.openai_responses._convert import (
    RequestDefaults,
    build_request,
    convert_tool_choice,
    convert_tools,
    text_format,
)
from spoon_llm.providers.openai_responses._decode import StreamDecoder, decode_response, map_status
from spoon_llm.types import Message, ToolCall, ToolSpec

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}


def test_function_tools_in_every_shape_go_out_flat_and_built_in_tools_as_given() -> None:
    tools = convert_tools([
        ToolSpec(name="a", parameters=SCHEMA, strict=True),
        {"type": "function", "function": {"name": "b", "description": "B", "parameters": SCHEMA}},
        {"name": "c", "input_schema": SCHEMA},
        {"type": "function", "name": "d", "parameters": SCHEMA, "defer_loading": True},
        {"type": "web_search", "search_context_size": "low"},
    ])
    assert tools == [
        {"type": "function", "name": "a", "parameters": SCHEMA, "strict": True},
        {"type": "function", "name": "b", "description": "B", "parameters": SCHEMA},
        {"type": "function", "name": "c", "parameters": SCHEMA},
        {"type": "function", "name": "d", "parameters": SCHEMA, "defer_loading": True},
        {"type": "web_search", "search_context_size": "low"},
    ]
    with pytest.raises(ValidationError, match="invalid tool description"):
        convert_tools([{"description": "no name"}])


@pytest.mark.parametrize(("choice", "wire"), [
    ("auto", "auto"), ("any", "required"), ("lookup", {"type": "function", "name": "lookup"}),
    ({"type": "function", "function": {"name": "f"}}, {"type": "function", "name": "f"}),
    ({"type": "tool", "name": "f"}, {"type": "function", "name": "f"}),
    ({"type": "allowed_tools", "mode": "auto", "tools": []}, {"type": "allowed_tools", "mode": "auto", "tools": []}),
])
def test_tool_choice_spellings(choice: Any, wire: Any) -> None:
    assert convert_tool_choice(choice) == wire


def test_output_formats() -> None:
    assert text_format({"type": "json_object"}, False, None) == {"type": "json_object"}
    assert text_format(None, True, None) == {"type": "json_object"}
    assert text_format(None, False, {"name": "A", "schema": SCHEMA, "strict": True}) == {
        "type": "json_schema", "name": "A", "schema": SCHEMA, "strict": True}
    flat = {"type": "json_schema", "name": "A", "schema": SCHEMA}
    assert text_format(flat, False, None) == flat
    assert text_format(None, False, None) is None


def test_configured_defaults_and_none_overrides() -> None:
    defaults = RequestDefaults(model="gpt-4.1", max_tokens=100, temperature=0.5, extra_body={"store": False})
    body, call = build_request([Message.user("hi")], {"temperature": None, "timeout": 3,
                                                      "extra_headers": {"x-a": "1"}}, defaults)
    assert body == {"model": "gpt-4.1", "input": [{"role": "user", "content": "hi"}], "max_output_tokens": 100,
                    "store": False}
    assert (call.timeout, call.headers, call.model) == (3, {"x-a": "1"}, "gpt-4.1")


def test_a_tool_result_with_parts_and_raw_items() -> None:
    from spoon_llm.types import ImagePart

    raw = {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["x"]}
    messages = [
        Message(role="assistant", tool_calls=[ToolCall.create("f", {}, id="call_1")],
                provider_data={"openai_responses": {"items": [raw]}}),
        Message(role="tool", tool_call_id="call_1", content=[ImagePart(url="https://x.test/a.png", detail="low")]),
    ]
    body, _ = build_request(messages, {}, RequestDefaults(model="m"))
    assert body["input"] == [raw, {"type": "function_call_output", "call_id": "call_1", "output": [
        {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"}]}]


def _decoder() -> StreamDecoder:
    return StreamDecoder(StreamAccumulator("openai_responses", "m"))


def test_a_call_whose_item_never_finishes_keeps_its_argument_deltas() -> None:
    decoder = _decoder()
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": ""}
    decoder.feed({"type": "response.output_item.added", "output_index": 0, "item": call})
    for piece in ('{"q"', ':"x"}'):
        decoder.feed({"type": "response.function_call_arguments.delta", "output_index": 0, "delta": piece})
    decoder.feed({"type": "response.completed", "response": {"status": "completed", "output": []}})
    decoder.finish()
    final = decoder.acc.final_chunk()
    assert [(c.id, c.name, c.arguments) for c in final.tool_calls] == [("call_1", "f", {"q": "x"})]
    assert final.finish_reason == "tool_calls" and final.native_finish_reason == "completed"


def test_the_finished_item_wins_over_its_deltas() -> None:
    decoder = _decoder()
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": ""}
    decoder.feed({"type": "response.output_item.added", "output_index": 0, "item": call})
    decoder.feed({"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"q":'})
    decoder.feed({"type": "response.output_item.done", "output_index": 0, "item": {**call, "arguments": '{"q":1}'}})
    decoder.feed({"type": "response.incomplete", "response": {"status": "incomplete",
                                                              "incomplete_details": {"reason": "content_filter"}}})
    decoder.finish()
    final = decoder.acc.final_chunk()
    assert final.tool_calls[0].arguments == {"q": 1}
    assert final.finish_reason == "content_filter"
    assert final.metadata["incomplete_reason"] == "content_filter"


def test_a_stream_of_only_the_final_response_still_gives_text_and_calls() -> None:
    decoder = _decoder()
    output = [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]},
              {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]
    decoder.feed({"type": "response.completed", "response": {"status": "completed", "output": output,
                                                             "usage": {"input_tokens": 3, "output_tokens": 2}}})
    chunks = decoder.finish()
    assert [c.kind for c in chunks] == ["text", "tool"]
    final = decoder.acc.final_chunk()
    assert final.content == "Hi" and final.tool_calls[0].name == "f"
    assert final.usage is not None and final.usage.total_tokens == 5


def test_failed_responses_and_error_events_raise() -> None:
    with pytest.raises(ProviderUnavailableError, match="boom"):
        decode_response({"status": "failed", "error": {"code": "server_error", "message": "boom"}})
    with pytest.raises(RateLimitError):
        _decoder().feed({"type": "error", "error": {"type": "rate_limit_error", "code": "rate_limit_exceeded",
                                                    "message": "slow down"}})


@pytest.mark.parametrize(("status", "reason", "calls", "ours"), [
    ("completed", None, False, "stop"), ("completed", None, True, "tool_calls"),
    ("incomplete", "max_output_tokens", False, "length"), ("incomplete", "other", False, "other"),
    ("queued", None, False, "other"), ("cancelled", None, False, "other"), (None, None, False, None),
])
def test_status_as_finish_reason(status: str | None, reason: str | None, calls: bool, ours: str | None) -> None:
    assert map_status(status, reason, calls) == ours
