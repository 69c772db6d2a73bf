"""Answers decoded without a second validation are the very instances validation would have built."""

from __future__ import annotations

import copy
from typing import Any

import pydantic
import pytest
from pydantic import BaseModel, PrivateAttr

from spoon_llm._trusted import build_trusted
from spoon_llm.pricing.book import priced_cost
from spoon_llm.providers.openai._decode import parse_chat_completion, parse_usage
from spoon_llm.types import CostInfo, LLMResponse, TokenUsage

ANSWER: dict[str, Any] = {
    "id": "chatcmpl-7", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Checking.", "refusal": None,
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]}}],
    "usage": {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40,
              "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}},
}


def _validated(response: LLMResponse) -> LLMResponse:
    """The same answer through pydantic validation, with the same set fields."""
    values = {name: getattr(response, name) for name in response.model_fields_set}
    usage = response.usage
    if usage is not None:
        values["usage"] = TokenUsage(**{name: getattr(usage, name) for name in usage.model_fields_set})
    validated = LLMResponse(**values, timestamp=response.timestamp)
    validated.__pydantic_fields_set__.discard("timestamp")  # given here only to match the clock
    return validated


def test_a_decoded_answer_equals_the_validated_one() -> None:
    response = parse_chat_completion(copy.deepcopy(ANSWER), provider="openai", model="gpt-4o-mini", duration=0.25)
    validated = _validated(response)
    assert response == validated
    assert repr(response) == repr(validated)
    assert response.model_dump() == validated.model_dump()
    assert response.model_dump_json() == validated.model_dump_json()
    assert response.model_fields_set == validated.model_fields_set
    assert response.usage is not None and validated.usage is not None
    assert response.usage.model_fields_set == validated.usage.model_fields_set
    assert (response.usage.input_tokens, response.usage.cached_input_tokens, response.usage.reasoning_tokens) == \
        (31, 4, 2)
    assert response.tool_calls[0].arguments == {"city": "Oslo"}
    assert LLMResponse.model_validate_json(response.model_dump_json()) == response  # round trip (the cache)


def test_each_answer_owns_its_lists_and_dicts() -> None:
    first = parse_chat_completion(copy.deepcopy(ANSWER), provider="openai", model="m", duration=0.1)
    second = parse_chat_completion(copy.deepcopy(ANSWER), provider="openai", model="m", duration=0.1)
    first.attempts.append("x")  # type: ignore[arg-type]
    first.metadata["mine"] = True
    first.fallback_path.append("a")
    assert second.attempts == [] and "mine" not in second.metadata and second.fallback_path == []
    first.content = "changed"  # assignment works as on any model
    assert first.content == "changed" and second.content == "Checking."


def test_vendor_values_of_another_type_are_still_validated() -> None:
    usage = parse_usage({"prompt_tokens": "12", "completion_tokens": 3.0, "total_tokens": 15})
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (12, 3)  # converted as before
    assert type(usage.input_tokens) is int and type(usage.output_tokens) is int
    answer = copy.deepcopy(ANSWER)
    answer["model"] = 123
    with pytest.raises(pydantic.ValidationError):
        parse_chat_completion(answer, provider="openai", model="m", duration=0.1)


def test_priced_costs_equal_validated_costs() -> None:
    fast = priced_cost(0.25, 1, "USD", "config override: pricing.m")
    slow = CostInfo(input_cost=0.25, output_cost=1.0, total_cost=1.25, currency="USD",
                    source="config override: pricing.m")
    assert fast == slow and repr(fast) == repr(slow) and fast.model_fields_set == slow.model_fields_set
    assert type(fast.output_cost) is float


def test_a_class_the_shortcut_cannot_build_is_validated() -> None:
    class WithPrivate(BaseModel):
        name: str = ""
        _seen: int = PrivateAttr(default=0)

    built = build_trusted(WithPrivate, {"name": "a"}, frozenset({"name"}))
    assert built.name == "a" and built._seen == 0  # validated: the private default is there


def test_a_decoded_anthropic_message_equals_the_validated_one() -> None:
    from spoon_llm.providers.anthropic._decode import decode_message

    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [{"type": "text", "text": "Checking."},
                           {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}],
               "stop_reason": "tool_use", "stop_sequence": None,
               "usage": {"input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 5,
                         "cache_creation_input_tokens": 2}}
    response = decode_message(message, request_id="r-1")
    validated = _validated(response)
    assert response == validated and repr(response) == repr(validated)
    assert response.model_dump_json() == validated.model_dump_json()
    assert response.model_fields_set == validated.model_fields_set
    assert response.usage is not None and (response.usage.input_tokens, response.usage.cached_input_tokens) == (27, 5)
    assert response.finish_reason == "tool_calls" and response.tool_calls[0].arguments == {"city": "Oslo"}
