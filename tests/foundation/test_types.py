import json

import pytest
from pydantic import ValidationError

from spoon_llm import (
    ImagePart,
    LLMResponse,
    LLMResponseChunk,
    Message,
    TextPart,
    TokenUsage,
    ToolCall,
    ToolSpec,
)
from spoon_llm.schema import Message as LegacyMessage
from spoon_llm.types import to_messages, to_tool_specs


def test_message_round_trips_through_dict_and_json():
    message = Message(
        role="assistant",
        content=[TextPart(text="look"), ImagePart(data="aGVsbG8=", media_type="image/png")],
        tool_calls=[ToolCall.create("get_weather", {"city": "Paris"}, id="call_1")],
    )
    assert Message.model_validate(message.model_dump()) == message
    assert Message.model_validate_json(message.model_dump_json()) == message


def test_plain_dicts_are_accepted_everywhere():
    messages = to_messages([{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hi"}])
    assert [m.role for m in messages] == ["system", "user"]
    assert to_messages("Hello")[0] == Message(role="user", content="Hello")
    assert to_messages({"role": "user", "content": "x"})[0].text == "x"


def test_openai_style_image_parts_are_coerced():
    message = Message.model_validate({"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]})
    parts = message.content
    assert isinstance(parts, list)
    assert parts[1] == ImagePart(data="QUJD", media_type="image/jpeg", detail="low")
    assert parts[1].data_url == "data:image/jpeg;base64,QUJD"
    assert parts[2].url == "https://example.com/cat.png"
    assert message.text == "what is this?"


def test_image_needs_exactly_one_source():
    with pytest.raises(ValidationError, match="exactly one"):
        ImagePart()
    with pytest.raises(ValidationError, match="exactly one"):
        ImagePart(url="https://x", data="QUJD")


def test_role_rules():
    with pytest.raises(ValidationError, match="tool_call_id"):
        Message(role="tool", content="42")
    with pytest.raises(ValidationError, match="only assistant"):
        Message(role="user", content="x", tool_calls=[ToolCall.create("f")])
    with pytest.raises(ValidationError):
        Message(role="wizard", content="x")


def test_tool_call_arguments_accessor():
    call = ToolCall.create("f", {"a": 1, "b": [1, 2]})
    assert call.name == "f"
    assert call.arguments == {"a": 1, "b": [1, 2]}
    assert json.loads(call.function.arguments) == {"a": 1, "b": [1, 2]}
    assert ToolCall.create("f", "").arguments == {}
    with pytest.raises(ValueError, match="not a JSON object"):
        _ = ToolCall.create("f", "[1, 2]").arguments


def test_tool_spec_accepts_flat_openai_and_anthropic_forms():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    flat = ToolSpec(name="weather", description="w", parameters=schema)
    openai_form = {"type": "function", "function": {"name": "weather", "description": "w", "parameters": schema}}
    anthropic_form = {"name": "weather", "description": "w", "input_schema": schema}
    assert to_tool_specs([openai_form, anthropic_form]) == [flat, flat]
    assert flat.to_openai() == openai_form


def test_usage_semantics_and_aliases():
    usage = TokenUsage(input_tokens=120, output_tokens=30, cached_input_tokens=100, reasoning_tokens=10)
    assert usage.total_tokens == 150
    assert usage.prompt_tokens == 120 and usage.completion_tokens == 30
    total = usage + TokenUsage(input_tokens=1, output_tokens=2)
    assert (total.input_tokens, total.output_tokens, total.cached_input_tokens) == (121, 32, 100)


def test_response_fields_of_the_older_api_and_round_trip():
    response = LLMResponse(content="hi", provider="openai", model="gpt-4o", finish_reason="stop",
                           native_finish_reason="stop", usage=TokenUsage(input_tokens=3, output_tokens=1),
                           request_id="req_1", duration=0.25, metadata={"x": 1})
    for name in ("content", "provider", "model", "finish_reason", "native_finish_reason", "tool_calls", "usage",
                 "metadata", "request_id", "duration", "timestamp", "cost", "reasoning", "attempts"):
        assert hasattr(response, name)
    assert LLMResponse.model_validate_json(response.model_dump_json()) == response
    assert str(response) == "hi"
    follow_up = response.to_message()
    assert follow_up.role == "assistant" and follow_up.text == "hi"


def test_chunk_prints_its_delta(capsys):
    for chunk in [LLMResponseChunk(delta="Hel", content="Hel"), LLMResponseChunk(delta="lo", content="Hello")]:
        print(chunk, end="")
    assert capsys.readouterr().out == "Hello"


def test_schema_module_re_exports_message_for_older_code():
    assert LegacyMessage is Message


def test_attempt_model_dump_lists_every_field_as_asdict_does() -> None:
    from dataclasses import asdict

    from spoon_llm.types import Attempt

    attempt = Attempt("openai", "gpt-4o", "openai#0", "main", "RateLimitError", 429, 0.25, 1.5)
    assert attempt.model_dump() == asdict(attempt)
    assert list(attempt.model_dump()) == list(asdict(attempt))
