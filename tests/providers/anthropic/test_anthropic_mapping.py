"""Pure wire mapping of the Anthropic provider: requests, responses, stream events, errors, SSE framing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spoon_llm.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderUnavailableError,
    RateLimitError,
    ServiceUnavailableError,
    TokenLimitError,
    ValidationError,
)
from spoon_llm.providers._stream import StreamAccumulator
from spoon_llm.providers.anthropic._convert import (
    DEFAULT_MAX_TOKENS,
    RequestDefaults,
    apply_auto_cache,
    build_request,
    convert_tool_choice,
)
from spoon_llm.providers.anthropic._decode import StreamDecoder, decode_message, map_stop_reason, usage_from
from spoon_llm.providers.anthropic._errors import error_from_body
from spoon_llm.transport import TextSSEParser
from spoon_llm.types import DocumentPart, ImagePart, Message, TextPart, ToolCall, to_messages

DEFAULTS = RequestDefaults(model="claude-test")


def body_of(messages: Any, **kwargs: Any) -> dict[str, Any]:
    body, _ = build_request(to_messages(messages), kwargs, DEFAULTS)
    return body


# -- requests ---------------------------------------------------------------------------------------------


def test_system_messages_are_merged_in_order_and_roles_merged() -> None:
    body = body_of([
        {"role": "system", "content": "First."},
        {"role": "user", "content": "a"},
        {"role": "developer", "content": "Second."},
        {"role": "user", "content": "b"},
    ])
    assert body["system"] == [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                            {"type": "text", "text": "b"}]}]
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS


def test_empty_turns_are_skipped() -> None:
    body = body_of([Message.user("a"), Message.assistant(None), Message.user(""), Message.user("b")])
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                            {"type": "text", "text": "b"}]}]


def test_single_plain_system_message_is_a_string() -> None:
    assert body_of([Message.system("Be brief."), Message.user("hi")])["system"] == "Be brief."


def test_tool_round_trip_history() -> None:
    messages = [
        Message.user("Weather in Paris and Rome?"),
        Message.assistant("Checking.", tool_calls=[ToolCall.create("weather", {"city": "Paris"}, id="toolu_1"),
                                                   ToolCall.create("weather", {"city": "Rome"}, id="toolu_2")]),
        Message.tool("toolu_1", {"temp": 21}),
        Message.tool("toolu_2", "18C"),
        Message.user("Thanks, and tomorrow?"),
    ]
    body = body_of(messages)
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp": 21}'},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "18C"},
            {"type": "text", "text": "Thanks, and tomorrow?"},
        ]},
    ]


def test_tool_result_error_flag_and_cache_control() -> None:
    message = Message(role="tool", tool_call_id="t1", content="boom",
                      provider_data={"anthropic": {"is_error": True, "cache_control": {"type": "ephemeral"}}})
    block = body_of([message])["messages"][0]["content"][0]
    assert block == {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True,
                     "cache_control": {"type": "ephemeral"}}


def test_images_and_documents_become_content_blocks() -> None:
    parts = [
        TextPart(text="Look"),
        ImagePart(data="aGk=", media_type="image/jpeg"),
        ImagePart(url="https://example.com/a.png", cache_control={"type": "ephemeral"}),
        ImagePart(url="data:image/webp;base64,AAAA"),
        DocumentPart(data="JVBERi0=", filename="report.pdf"),
        DocumentPart(url="https://example.com/doc.pdf"),
        DocumentPart(data="aGVsbG8=", media_type="text/plain"),
    ]
    content = body_of([Message.user(parts)])["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "Look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "aGk="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"},
         "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "AAAA"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
         "title": "report.pdf"},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/doc.pdf"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}},
    ]


def test_openai_style_image_url_parts_are_accepted() -> None:
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,QQ=="}}]}
    assert body_of([message])["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QQ=="}}]


def test_preserved_thinking_blocks_go_back_verbatim() -> None:
    raw = [
        {"type": "thinking", "thinking": "Let me think", "signature": "sig=="},
        {"type": "text", "text": "Calling."},
        {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"x": 1}},
    ]
    assistant = Message(role="assistant", content="Calling.", tool_calls=[ToolCall.create("f", {"x": 1}, id="toolu_9")],
                        reasoning="Let me think", provider_data={"anthropic": {"content": raw}})
    body = body_of([Message.user("go"), assistant, Message.tool("toolu_9", "ok")])
    assert body["messages"][1]["content"] == raw


def test_edited_turn_is_rebuilt_but_keeps_thinking_first() -> None:
    raw = [{"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "old"}]
    assistant = Message(role="assistant", content="new text", provider_data={"anthropic": {"content": raw}})
    assert body_of([Message.user("q"), assistant])["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "new text"}]


def test_tools_and_tool_choice_mapping() -> None:
    tools = [
        {"name": "search", "description": "Search", "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
    ]
    body = body_of("hi", tools=tools, tool_choice="required", parallel_tool_calls=False)
    assert body["tools"] == [
        {"name": "search", "description": "Search", "input_schema": {"type": "object", "properties": {}}},
        {"name": "calc", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
    ]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert convert_tool_choice("auto") == {"type": "auto"}
    assert convert_tool_choice("none") == {"type": "none"}
    assert convert_tool_choice("search") == {"type": "tool", "name": "search"}
    assert convert_tool_choice({"type": "function", "function": {"name": "calc"}}) == {"type": "tool", "name": "calc"}
    assert convert_tool_choice({"type": "any"}) == {"type": "any"}


def test_options_mapping() -> None:
    body = body_of("hi", max_tokens=100, temperature=0.2, top_p=0.9, top_k=5, stop="END",
                   json_schema={"type": "object", "properties": {"a": {"type": "string"}}}, user="u-1",
                   extra_body={"service_tier": "auto"})
    assert body["max_tokens"] == 100
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 5)
    assert body["stop_sequences"] == ["END"]
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {"a": {"type": "string"}}}}}
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["service_tier"] == "auto"


def test_thinking_budget_raises_a_defaulted_max_tokens_and_drops_default_temperature() -> None:
    body, _ = build_request(to_messages("hi"), {"thinking": 8000}, RequestDefaults(model="m", temperature=0.3))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8000}
    assert body["max_tokens"] == 8000 + DEFAULT_MAX_TOKENS
    assert "temperature" not in body


def test_json_mode_without_schema_adds_an_instruction() -> None:
    body = body_of([Message.system("S"), Message.user("hi")], response_format={"type": "json_object"})
    assert body["system"][-1]["text"].startswith("Respond with a single valid JSON object")


def test_unknown_kwarg_is_refused_and_openai_only_ones_are_ignored() -> None:
    with pytest.raises(ValidationError, match="unknown argument 'temprature'"):
        body_of("hi", temprature=0.1)
    assert "seed" not in body_of("hi", seed=1, presence_penalty=0.1)


def test_call_options_carry_timeout_headers_and_betas() -> None:
    _, call = build_request(to_messages("hi"), {"timeout": 5, "extra_headers": {"x-a": "1"},
                                                "betas": ["b1", "b2"], "model": "claude-x"}, DEFAULTS)
    assert call.timeout == 5
    assert call.model == "claude-x"
    assert call.headers == {"x-a": "1", "anthropic-beta": "b1,b2"}


def test_caller_cache_control_and_auto_cache_policy() -> None:
    body = body_of([Message.system("S"), Message.user("hi")], cache_control={"type": "ephemeral"})
    assert body["cache_control"] == {"type": "ephemeral"}
    body = body_of([Message.system("S"), Message.user("u1"), Message.assistant("a1"), Message.user("u2")],
                   tools=[{"name": "t", "parameters": {"type": "object"}}], auto_cache=True)
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["system"] == [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}]
    assert body["messages"][-1]["content"] == [{"type": "text", "text": "u2", "cache_control": {"type": "ephemeral"}}]


def test_auto_cache_respects_the_four_breakpoint_limit() -> None:
    cached = {"type": "ephemeral"}
    body: dict[str, Any] = {
        "system": [{"type": "text", "text": f"s{i}", "cache_control": cached} for i in range(3)],
        "tools": [{"name": "t", "input_schema": {}}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    apply_auto_cache(body)
    assert body["tools"][-1]["cache_control"] == cached  # the fourth and last breakpoint
    assert body["messages"][-1]["content"] == "hi"


# -- responses --------------------------------------------------------------------------------------------


def test_decode_message_keeps_text_and_tool_calls_apart() -> None:
    data = {
        "id": "msg_1", "model": "claude-x", "stop_reason": "tool_use", "stop_sequence": None,
        "content": [
            {"type": "thinking", "thinking": "I should call f", "signature": "sig"},
            {"type": "text", "text": "Let me check. "},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"q": "x"}},
            {"type": "text", "text": "Done."},
        ],
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 20},
    }
    response = decode_message(data, request_id="req_1")
    assert response.content == "Let me check. Done."
    assert response.tool_calls[0].id == "toolu_1"
    assert response.tool_calls[0].arguments == {"q": "x"}
    assert response.reasoning == "I should call f"
    assert (response.finish_reason, response.native_finish_reason) == ("tool_calls", "tool_use")
    assert response.request_id == "req_1"
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens) == (130, 100, 20)
    assert (usage.output_tokens, usage.total_tokens) == (5, 135)
    assert usage.raw == data["usage"]
    # The next turn carries the thinking block with its signature.
    turn = response.to_message()
    assert turn.provider_data == {"anthropic": {"content": data["content"]}}
    sent = body_of([Message.user("q"), turn, Message.tool("toolu_1", "r")])
    assert sent["messages"][1]["content"] == data["content"]


def test_server_tools_stay_out_of_tool_calls() -> None:
    data = {"content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "Found it."},
    ], "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}}
    response = decode_message(data)
    assert response.tool_calls == []
    assert response.metadata["server_tool_calls"] == [
        {"id": "srvtoolu_1", "name": "web_search", "type": "server_tool_use", "input": {"query": "q"}}]
    assert response.metadata["provider_data"]["anthropic"]["content"] == data["content"]


@pytest.mark.parametrize(("native", "ours"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("refusal", "content_filter"), ("pause_turn", "other"), ("something_new", "other"), (None, None),
])
def test_stop_reason_mapping(native: str | None, ours: str | None) -> None:
    assert map_stop_reason(native) == ours


def test_usage_absent() -> None:
    assert usage_from(None) is None


def _feed_all(events: list[dict[str, Any]]) -> tuple[StreamAccumulator, list[Any]]:
    acc = StreamAccumulator("anthropic", "m")
    decoder = StreamDecoder(acc)
    chunks = [c for c in (decoder.feed(e) for e in events) if c is not None]
    assert decoder.done
    decoder.finish()
    return acc, chunks


def test_stream_events_build_text_tool_calls_usage_and_signatures() -> None:
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {
            "input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "ping"},
        {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"a": '}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 40,
                                                                                 "input_tokens": None}},
        {"type": "message_stop"},
    ]
    acc, chunks = _feed_all(events)
    assert "".join(c.delta for c in chunks if c.kind == "text") == "Hello"
    assert acc.reasoning_text == "Hmm"
    assert [(c.id, c.name, c.arguments) for c in acc.tool_calls] == [("toolu_1", "f", {"a": 1})]
    assert (acc.finish_reason, acc.native_finish_reason) == ("tool_calls", "tool_use")
    assert acc.usage is not None
    assert (acc.usage.input_tokens, acc.usage.cached_input_tokens, acc.usage.output_tokens) == (15, 3, 40)
    content = acc.metadata["provider_data"]["anthropic"]["content"]
    assert content[0] == {"type": "thinking", "thinking": "Hmm", "signature": "SIG"}
    assert content[2]["input"] == {"a": 1}


def test_stream_server_tool_input_is_not_a_tool_call() -> None:
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 1, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {
            "type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta",
                                                              "partial_json": '{"query": "x"}'}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    ]
    acc, _ = _feed_all(events)
    assert acc.tool_calls == []
    assert acc.metadata["server_tool_calls"] == [
        {"id": "srv_1", "name": "web_search", "type": "server_tool_use", "input": {"query": "x"}}]


def test_stream_in_band_error_raises_the_mapped_error() -> None:
    decoder = StreamDecoder(StreamAccumulator("anthropic"))
    with pytest.raises(ServiceUnavailableError) as info:
        decoder.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert info.value.retryable
    assert info.value.error_type == "overloaded_error"
    assert info.value.status_code is None


# -- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "kind", "message", "cls"), [
    (400, "invalid_request_error", "max_tokens: too large", InvalidRequestError),
    (400, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum", TokenLimitError),
    (400, "invalid_request_error", "input length and `max_tokens` exceed context limit: 1 + 2 > 3", TokenLimitError),
    (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", TokenLimitError),
    (401, "authentication_error", "invalid x-api-key", AuthenticationError),
    (403, "permission_error", "no", PermissionDeniedError),
    (404, "not_found_error", "model: nope", ModelNotFoundError),
    (429, "rate_limit_error", "slow down", RateLimitError),
    (500, "api_error", "Internal server error", ProviderUnavailableError),
    (529, "overloaded_error", "Overloaded", ServiceUnavailableError),
])
def test_error_from_body(status: int, kind: str, message: str, cls: type) -> None:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_9"}
    error = error_from_body(status, body, {"retry-after": "7", "anthropic-ratelimit-requests-remaining": "0",
                                           "x-api-key": "secret"}, model="m")
    assert type(error) is cls
    assert (error.status_code, error.error_type, error.message) == (status, kind, message)
    assert error.request_id == "req_9"
    assert error.retry_after == 7.0
    assert error.headers == {"retry-after": "7", "anthropic-ratelimit-requests-remaining": "0"}
    assert error.retryable == (status in (429, 500, 529))


def test_error_from_a_non_json_body() -> None:
    error = error_from_body(502, "<html>bad gateway</html>", None)
    assert isinstance(error, ProviderUnavailableError)
    assert error.message == "<html>bad gateway</html>"


# -- SSE framing ------------------------------------------------------------------------------------------


def test_sse_reader_handles_split_frames_crlf_comments_and_padding() -> None:
    stream = (b'event: message_start\r\ndata: {"type": "message_start"}      \r\n\r\n'
              b": keep-alive\n\n"
              b"event: content_block_delta\ndata: {\"type\":\n"
              b"data: \"x\"}\n\n"
              b'data: {"type": "tail"}')
    reader = TextSSEParser()
    events = []
    for i in range(0, len(stream), 7):
        events.extend(reader.feed(stream[i:i + 7]))
    events.extend(reader.close())
    assert [(e, json.loads(d)) for e, d in events] == [
        ("message_start", {"type": "message_start"}),
        ("content_block_delta", {"type": "x"}),
        (None, {"type": "tail"}),
    ]
