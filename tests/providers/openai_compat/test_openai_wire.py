"""Pure wire mapping (no I/O): our messages/tools/keywords -> OpenAI JSON, OpenAI JSON -> our types."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from pydantic import BaseModel

from spoon_llm.errors import ValidationError
from spoon_llm.providers.openai._convert import (
    build_chat_body,
    build_completion_body,
    build_embedding_body,
    messages_to_wire,
    response_format_from,
    tool_choice_to_wire,
    tools_to_wire,
)
from spoon_llm.providers.openai._decode import (
    parse_chat_completion,
    parse_embeddings,
    parse_text_completion,
    parse_usage,
)
from spoon_llm.providers.openai._dialect import (
    WireDialect,
    model_rules,
    normalize_finish_reason,
    supports_legacy_completions,
)
from spoon_llm.types import DocumentPart, ImagePart, Message, TextPart, ToolCall, ToolSpec

OPENAI = WireDialect(provider="openai")
DEEPSEEK = WireDialect(provider="deepseek", reasoning_field="reasoning_content", completion_tokens_for_reasoning=False)
OPENROUTER = WireDialect(provider="openrouter", reasoning_field="reasoning", completion_tokens_for_reasoning=False)


def body(messages: object = "hi", model: str = "gpt-4o", dialect: WireDialect = OPENAI, stream: bool = False,
         defaults: dict[str, object] | None = None, **params: object) -> dict[str, object]:
    rules = model_rules(model, dialect.completion_tokens_for_reasoning)
    return build_chat_body(messages_to_wire(messages, dialect, rules), model, params, dialect=dialect, rules=rules,
                           stream=stream, defaults=defaults)


# -- messages ---------------------------------------------------------------------------------------------------


def test_message_objects_map_field_by_field() -> None:
    call = ToolCall.create("get_weather", {"city": "Paris"}, id="call_1")
    wire = messages_to_wire([
        Message.system("be brief"),
        Message.user([TextPart(text="What is this?"), ImagePart(url="https://x/cat.png", detail="low"),
                      ImagePart(data="QUJD", media_type="image/jpeg")]),
        Message.assistant(tool_calls=[call]),
        Message.tool("call_1", {"temp": 21}),
        Message(role="user", content="thanks", name="bob"),
    ], OPENAI)
    assert wire == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
        ]},
        {"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        ]},
        {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"},
        {"role": "user", "content": "thanks", "name": "bob"},
    ]


def test_documents_become_file_parts_and_cache_control_is_kept() -> None:
    wire = messages_to_wire([Message.user([
        DocumentPart(data="JVBER", filename="a.pdf"),
        DocumentPart(url="https://x/doc.pdf"),
        TextPart(text="summarise", cache_control={"type": "ephemeral"}),
    ])], OPENAI)
    assert wire[0]["content"] == [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"}},
        {"type": "file", "file": {"file_data": "https://x/doc.pdf"}},
        {"type": "text", "text": "summarise", "cache_control": {"type": "ephemeral"}},
    ]


def test_dict_messages_are_wire_format_with_our_loose_parts_translated() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "AAA", "format": "mp3"}}
    wire = messages_to_wire([
        {"role": "user", "content": ["plain", {"type": "image", "url": "https://x/i.png"}, audio,
                                     {"type": "input_text", "text": "t"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "name": "f", "arguments": {"a": 1}}]},
        {"role": "tool", "tool_call_id": "c", "content": {"ok": True}},
    ], OPENAI)
    assert wire[0]["content"] == [
        {"type": "text", "text": "plain"},
        {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
        audio,  # a part we do not model passes through untouched
        {"type": "text", "text": "t"},
    ]
    assert wire[1]["tool_calls"] == [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
    assert wire[2]["content"] == '{"ok": true}'


def test_a_bare_string_is_one_user_turn() -> None:
    assert messages_to_wire("hello", OPENAI) == [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("bad", [
    {"role": "robot", "content": "x"},
    {"role": "tool", "content": "no id"},
    {"role": "user", "content": 42},
])
def test_invalid_messages_are_refused_before_sending(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        messages_to_wire([bad], OPENAI)


@pytest.mark.parametrize(("dialect", "field"), [(OPENAI, None), (DEEPSEEK, "reasoning_content"),
                                                (OPENROUTER, "reasoning")])
def test_assistant_reasoning_goes_back_in_the_vendor_field(dialect: WireDialect, field: str | None) -> None:
    message = Message(role="assistant", content="4", reasoning="2+2",
                      provider_data={"reasoning_details": [{"type": "reasoning.text", "text": "2+2"}]})
    as_dict = {"role": "assistant", "content": "4", "reasoning": "2+2"}
    for wire in (messages_to_wire([message], dialect)[0], messages_to_wire([as_dict], dialect)[0]):
        assert "reasoning" not in wire or field == "reasoning"
        if field:
            assert wire[field] == "2+2"
    assert messages_to_wire([message], OPENAI)[0]["reasoning_details"] == [{"type": "reasoning.text", "text": "2+2"}]


def test_response_to_message_round_trips_for_the_next_turn() -> None:
    response = parse_chat_completion({"choices": [{"message": {
        "role": "assistant", "content": None, "reasoning_content": "think",
        "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }, "finish_reason": "tool_calls"}]}, provider="deepseek", model="deepseek-reasoner")
    wire = messages_to_wire([response.to_message(), Message.tool("t1", "done")], DEEPSEEK)
    assert wire[0] == {"role": "assistant", "reasoning_content": "think", "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    assert wire[1] == {"role": "tool", "content": "done", "tool_call_id": "t1"}


# -- model rules and body -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "reasoning", "param"), [
    ("gpt-4o", False, "max_tokens"), ("gpt-5-chat-latest", False, "max_tokens"), ("o3-mini", True,
                                                                                   "max_completion_tokens"),
    ("gpt-5-nano", True, "max_completion_tokens"), ("openai/o1", True, "max_completion_tokens"),
])
def test_model_rules(model: str, reasoning: bool, param: str) -> None:
    rules = model_rules(model)
    assert (rules.reasoning, rules.max_tokens_param) == (reasoning, param)
    assert model_rules(model, False).max_tokens_param == "max_tokens"


def test_reasoning_models_get_max_completion_tokens_and_no_sampling_knobs() -> None:
    sent = body(model="o3-mini", max_tokens=10, temperature=0.2, top_p=0.5, reasoning_effort="low")
    assert sent == {"model": "o3-mini", "messages": [{"role": "user", "content": "hi"}],
                    "max_completion_tokens": 10, "reasoning_effort": "low"}
    assert body(model="gpt-5-nano", temperature=1)["temperature"] == 1  # the one value they accept


def test_o1_mini_gets_system_turns_as_user_turns() -> None:
    sent = body([Message.system("rules"), Message.user("q")], model="o1-mini")
    assert [m["role"] for m in sent["messages"]] == ["user", "user"]


def test_defaults_apply_under_call_keywords_and_none_removes_them() -> None:
    defaults = {"max_tokens": 100, "temperature": 0.3, "extra_body": {"top_k": 5}}
    assert body(defaults=defaults) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
                                       "max_tokens": 100, "temperature": 0.3, "top_k": 5}
    sent = body(defaults=defaults, temperature=None, max_tokens=7)
    assert "temperature" not in sent and sent["max_tokens"] == 7


def test_unknown_keywords_and_extra_body_are_sent_as_they_are() -> None:
    sent = body(n=2, seed=1, user="u", logprobs=True, provider={"order": ["x"]}, extra_body={"transforms": ["m"]})
    assert sent["n"] == 2 and sent["seed"] == 1 and sent["user"] == "u" and sent["logprobs"] is True
    assert sent["provider"] == {"order": ["x"]} and sent["transforms"] == ["m"]


def test_stream_asks_for_usage_unless_told_not_to() -> None:
    assert body(stream=True)["stream_options"] == {"include_usage": True}
    assert "stream_options" not in body(stream=True, include_usage=False)
    assert "stream" not in body()


def test_tools_in_every_accepted_form() -> None:
    flat = {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}
    openai_form = {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}
    anthropic_form = {"name": "h", "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}
    wire = tools_to_wire([ToolSpec(name="e", strict=True), flat, openai_form, anthropic_form])
    assert [t["function"]["name"] for t in wire] == ["e", "f", "g", "h"]
    assert wire[0]["function"]["strict"] is True
    assert wire[2] == openai_form
    assert wire[3]["function"]["parameters"]["properties"] == {"x": {"type": "string"}}
    assert "tools" not in body(tools=[])


@pytest.mark.parametrize(("given", "sent"), [
    ("auto", "auto"), ("none", "none"), ("required", "required"), ("any", "required"),
    ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
    ({"type": "function", "function": {"name": "x"}}, {"type": "function", "function": {"name": "x"}}),
    ({"type": "tool", "name": "y"}, {"type": "function", "function": {"name": "y"}}),
    ({"type": "any"}, "required"),
])
def test_tool_choice(given: object, sent: object) -> None:
    assert tool_choice_to_wire(given) == sent


class Answer(BaseModel):
    city: str


def test_response_format_json_mode_and_schema() -> None:
    assert body(json=True)["response_format"] == {"type": "json_object"}
    assert response_format_from("json") == {"type": "json_object"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert body(json_schema=schema)["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    named = {"name": "ans", "schema": schema, "strict": True}
    assert response_format_from(json_schema=named) == {"type": "json_schema", "json_schema": named}
    from_model = body(response_format=Answer)["response_format"]
    assert from_model["json_schema"]["name"] == "Answer"
    assert from_model["json_schema"]["schema"]["properties"] == {"city": {"title": "City", "type": "string"}}


def test_completion_and_embedding_bodies() -> None:
    assert build_completion_body("Say", "davinci-002", {"max_tokens": 5}, stream=True) == {
        "model": "davinci-002", "prompt": "Say", "max_tokens": 5, "stream": True,
        "stream_options": {"include_usage": True}}
    assert supports_legacy_completions("gpt-3.5-turbo-instruct") and not supports_legacy_completions("gpt-4o")
    emb = WireDialect(provider="openai", embedding_encoding="base64")
    assert build_embedding_body(["a"], "m", {"dimensions": 8}, dialect=emb) == {
        "model": "m", "input": ["a"], "encoding_format": "base64", "dimensions": 8}
    assert "encoding_format" not in build_embedding_body(["a"], "m", {"encoding_format": None}, dialect=emb)


# -- responses ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("native", "ours"), [
    ("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"), ("function_call", "tool_calls"),
    ("content_filter", "content_filter"), ("end_turn", "stop"), ("weird", "other"), (None, None),
])
def test_finish_reasons(native: str | None, ours: str | None) -> None:
    assert normalize_finish_reason(native) == ours


def test_usage_semantics() -> None:
    usage = parse_usage({"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
                         "prompt_tokens_details": {"cached_tokens": 80, "cache_write_tokens": 5},
                         "completion_tokens_details": {"reasoning_tokens": 30}})
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (100, 50, 150)
    assert (usage.cached_input_tokens, usage.cache_write_tokens, usage.reasoning_tokens) == (80, 5, 30)
    assert usage.raw is not None and usage.raw["prompt_tokens"] == 100
    deepseek = parse_usage({"prompt_tokens": 10, "completion_tokens": 2, "prompt_cache_hit_tokens": 7})
    assert deepseek is not None and deepseek.cached_input_tokens == 7 and deepseek.total_tokens == 12
    assert parse_usage(None) is None


def test_chat_completion_with_refusal_logprobs_and_extra_choices() -> None:
    response = parse_chat_completion({
        "id": "chatcmpl-1", "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": None, "refusal": "I can't"},
             "finish_reason": "stop", "logprobs": {"content": []}},
            {"index": 1, "message": {"role": "assistant", "content": "other"}, "finish_reason": "length"},
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }, provider="openai", model="gpt-4o", request_id="req_1")
    assert response.content == "" and response.refusal == "I can't"
    assert response.model == "gpt-4o-2024-08-06" and response.request_id == "req_1"
    assert response.metadata["n_choices"] == 2 and response.metadata["choices"][1]["content"] == "other"
    assert response.metadata["logprobs"] == {"content": []} and response.metadata["system_fingerprint"] == "fp"


def test_legacy_function_call_is_one_tool_call_without_id() -> None:
    response = parse_chat_completion({"choices": [{"message": {
        "content": None, "function_call": {"name": "f", "arguments": '{"x": 1}'}}, "finish_reason": "function_call"}]},
        provider="openai", model="gpt-4")
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [(None, "f", {"x": 1})]
    assert response.finish_reason == "tool_calls" and response.native_finish_reason == "function_call"


def test_openrouter_extras_are_kept() -> None:
    response = parse_chat_completion({
        "provider": "Anthropic", "model": "anthropic/claude-3.5-sonnet",
        "choices": [{"message": {"content": "ok", "reasoning": "because",
                                 "reasoning_details": [{"type": "reasoning.text", "text": "because"}]},
                     "finish_reason": "stop", "native_finish_reason": "end_turn"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "cost": 0.002,
                  "cost_details": {"upstream_inference_prompt_cost": 0.0015,
                                   "upstream_inference_completions_cost": 0.0005}},
    }, provider="openrouter", model="anthropic/claude-3.5-sonnet")
    assert response.reasoning == "because"
    assert response.metadata["native_finish_reason"] == "end_turn" and response.metadata["provider"] == "Anthropic"
    assert response.metadata["cost"] == 0.002
    assert response.cost is not None and response.cost.total_cost == 0.002 and response.cost.input_cost == 0.0015
    assert response.to_message().provider_data == {"reasoning_details": [{"type": "reasoning.text", "text": "because"}]}


def test_content_as_a_list_of_parts_is_joined() -> None:
    response = parse_chat_completion({"choices": [{"message": {"content": [
        {"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]}}]},
        provider="x", model="m")
    assert response.content == "ab"


def test_text_completion() -> None:
    response = parse_text_completion({"id": "cmpl", "model": "davinci-002", "choices": [
        {"text": " there", "finish_reason": "length"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
        provider="openai", model="davinci-002")
    assert (response.content, response.finish_reason) == (" there", "length")


def test_embeddings_float_and_base64_in_index_order() -> None:
    packed = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()
    response = parse_embeddings({"model": "m", "data": [
        {"index": 1, "embedding": packed}, {"index": 0, "embedding": [0.1, 0.2, 0.3]}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4}}, provider="openai", model="m")
    assert response.embeddings == [[0.1, 0.2, 0.3], [0.5, -1.0, 2.0]]
    assert response.dimensions == 3 and response.usage is not None and response.usage.input_tokens == 4


def test_wire_output_is_json_serialisable() -> None:
    json.dumps(body([Message.user([ImagePart(url="https://x")])], tools=[ToolSpec(name="t")], tool_choice="t"))
