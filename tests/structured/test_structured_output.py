"""Typed structured output through the simulator (real sockets): parsed answers, per-vendor request bodies,
validation errors, re-asks in the trace, streaming and fallback."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from spoon_llm import LLMError, OutputValidationError, ValidationError
from spoon_llm.testing import Fault, ProviderSimulator, Reply, Usage

VENDORS = ("openai", "anthropic", "gemini")


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    """A person and where they live."""

    name: str
    age: int = Field(ge=0, description="Age in years")
    nickname: str | None = None
    role: Literal["admin", "user"] = "user"
    addresses: list[Address]


GOOD = {"name": "Ada", "age": 36, "nickname": None, "role": "admin",
        "addresses": [{"street": "1 Loop Rd", "city": "London"}]}
BAD = {"name": "Ada", "age": "thirty-six", "addresses": [{"street": "1 Loop Rd"}]}


def _objects(node: Any) -> list[dict[str, Any]]:
    """Every object schema inside ``node``."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found.extend(_objects(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_objects(value))
    return found


@pytest.mark.parametrize("vendor", VENDORS)
async def test_nested_model_comes_back_as_an_instance(sim: ProviderSimulator, make_manager: Any, vendor: str) -> None:
    sim.script(vendor, Reply(text=json.dumps(GOOD)))
    manager = make_manager(vendor)
    response = await manager.chat("Who is Ada?", response_format=Person)
    assert isinstance(response.parsed, Person)
    assert isinstance(response.parsed.addresses[0], Address)
    assert response.parsed == Person.model_validate(GOOD)
    assert response.content == json.dumps(GOOD)


async def test_openai_body_is_strict_json_schema(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(text=json.dumps(GOOD)))
    await make_manager("openai").chat("Who?", response_format=Person)
    fmt = sim.last_request("openai").body["response_format"]
    assert fmt["type"] == "json_schema"
    spec = fmt["json_schema"]
    assert spec["name"] == "Person" and spec["strict"] is True
    schema = spec["schema"]
    # Strict mode: every object closed, every property required, no defaults; described $refs inlined.
    objects = _objects(schema)
    assert len(objects) >= 2
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    assert "default" not in json.dumps(schema)
    assert schema["properties"]["addresses"]["items"] == {"$ref": "#/$defs/Address"}
    assert schema["properties"]["age"]["minimum"] == 0  # a supported numeric constraint is kept
    assert schema["properties"]["role"]["enum"] == ["admin", "user"]


async def test_anthropic_body_uses_output_config_format(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("anthropic", Reply(text=json.dumps(GOOD)))
    await make_manager("anthropic").chat("Who?", response_format=Person)
    body = sim.last_request("anthropic").body
    fmt = body["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["schema"]
    for obj in _objects(schema):
        assert obj["additionalProperties"] is False
    age = schema["properties"]["age"]
    assert "minimum" not in age  # unsupported by Anthropic: restated in the description instead
    assert age["description"] == "Age in years {minimum: 0}"
    assert "system" not in body  # native structured output: no instruction needed
    assert "tools" not in body


async def test_gemini_body_uses_response_json_schema(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("gemini", Reply(text=json.dumps(GOOD)))
    await make_manager("gemini").chat("Who?", response_format=Person)
    config = sim.last_request("gemini").body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == Person.model_json_schema()
    assert "responseSchema" not in config


@pytest.mark.parametrize("vendor", VENDORS)
async def test_invalid_reply_raises_output_validation_error(sim: ProviderSimulator, make_manager: Any,
                                                            vendor: str) -> None:
    sim.script(vendor, Reply(text=json.dumps(BAD)))
    manager = make_manager(vendor)
    with pytest.raises(OutputValidationError) as caught:
        await manager.chat("Who?", response_format=Person)
    error = caught.value
    assert isinstance(error, LLMError)
    assert error.raw_text == json.dumps(BAD)
    locs = {tuple(e["loc"]) for e in error.errors}
    assert ("age",) in locs and ("addresses", 0, "city") in locs
    assert error.response is not None and error.response.attempts[-1].error_type == "OutputValidationError"


async def test_text_that_is_not_json_raises_with_the_raw_text(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(text="Sure! Ada is 36."))
    with pytest.raises(OutputValidationError) as caught:
        await make_manager("openai").chat("Who?", response_format=Person)
    assert caught.value.raw_text == "Sure! Ada is 36."
    assert caught.value.errors[0]["type"] == "json_invalid"


@pytest.mark.parametrize("vendor", VENDORS)
async def test_output_retries_reasks_with_the_errors(sim: ProviderSimulator, make_manager: Any, vendor: str) -> None:
    sim.script(vendor, Reply(text=json.dumps(BAD), usage=Usage(input_tokens=100, output_tokens=20)), times=1)
    sim.script(vendor, Reply(text=json.dumps(GOOD), usage=Usage(input_tokens=150, output_tokens=30)), times=1)
    manager = make_manager(vendor)
    costs: list[float] = []
    manager.add_observer(lambda event: costs.append(event.cost or 0.0) if event.kind == "request_end" else None)
    response = await manager.chat("Who?", response_format=Person, output_retries=1)
    assert isinstance(response.parsed, Person)
    # The trace shows both calls: the first marked as failing validation, the re-ask succeeding.
    assert [a.error_type for a in response.attempts] == ["OutputValidationError", None]
    assert response.metadata["output_reasks"] == 1
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (250, 50)
    assert response.cost is not None and len(costs) == 2
    assert response.cost.total_cost == pytest.approx(sum(costs))
    # The re-ask carried the bad answer and the errors back to the model.
    second = sim.requests_for(vendor)[-1].body
    assert json.dumps(BAD) in str(second)
    assert "did not match the required JSON schema" in str(second)


async def test_output_retries_exhausted_raises(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(text=json.dumps(BAD)), times=3)
    with pytest.raises(OutputValidationError) as caught:
        await make_manager("openai").chat("Who?", response_format=Person, output_retries=2)
    assert len(sim.requests_for("openai")) == 3
    assert [a.error_type for a in caught.value.response.attempts] == ["OutputValidationError"] * 3


@pytest.mark.parametrize("vendor", VENDORS)
async def test_list_type_is_wrapped_and_unwrapped(sim: ProviderSimulator, make_manager: Any, vendor: str) -> None:
    sim.script(vendor, Reply(text=json.dumps({"result": [GOOD["addresses"][0]] * 2})))
    response = await make_manager(vendor).chat("Addresses?", response_format=list[Address])
    assert response.parsed == [Address(street="1 Loop Rd", city="London")] * 2


async def test_fallback_gives_the_same_parsed_type(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.fault("openai", Fault.server_error(), times=None)
    sim.script("anthropic", Reply(text=json.dumps(GOOD)))
    manager = make_manager("openai", "anthropic", fallback_chain=["openai", "anthropic"])
    response = await manager.chat("Who?", response_format=Person)
    assert response.provider == "anthropic"
    assert isinstance(response.parsed, Person)
    # Each vendor was asked in its own dialect.
    assert sim.last_request("openai").body["response_format"]["json_schema"]["strict"] is True
    assert "output_config" in sim.last_request("anthropic").body


@pytest.mark.parametrize("vendor", VENDORS)
async def test_stream_final_chunk_carries_parsed(sim: ProviderSimulator, make_manager: Any, vendor: str) -> None:
    text = json.dumps(GOOD)
    sim.script(vendor, Reply(text=text, chunks=[text[:10], text[10:40], text[40:]]))
    chunks = [c async for c in make_manager(vendor).chat_stream("Who?", response_format=Person)]
    final = chunks[-1]
    assert final.kind == "final" and isinstance(final.parsed, Person)
    assert all(c.parsed is None for c in chunks[:-1])
    assert "".join(c.delta for c in chunks) == text


async def test_stream_invalid_answer_raises_at_the_end(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(text=json.dumps(BAD)))
    seen = []
    with pytest.raises(OutputValidationError):
        async for chunk in make_manager("openai").chat_stream("Who?", response_format=Person):
            seen.append(chunk)
    assert "".join(c.delta for c in seen) == json.dumps(BAD)


async def test_stream_rejects_output_retries(sim: ProviderSimulator, make_manager: Any) -> None:
    with pytest.raises(ValidationError, match="chat_stream"):
        async for _ in make_manager("openai").chat_stream("Who?", response_format=Person, output_retries=1):
            pass


async def test_bad_settings_are_rejected(make_manager: Any) -> None:
    manager = make_manager("openai")
    with pytest.raises(ValidationError, match="output_retries"):
        await manager.chat("Who?", response_format=Person, output_retries=-1)
    with pytest.raises(ValidationError, match="output_retries needs a typed response_format"):
        await manager.chat("Who?", output_retries=1)
    with pytest.raises(ValidationError, match="not a pydantic model"):
        await manager.chat("Who?", response_format=object())


async def test_bare_json_schema_is_parsed_to_json(sim: ProviderSimulator, make_manager: Any) -> None:
    schema = {"type": "object", "title": "Pair", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    sim.script("openai", Reply(text='{"a": 1}'))
    response = await make_manager("openai").chat("Pair?", response_format=schema)
    assert response.parsed == {"a": 1}
    assert sim.last_request("openai").body["response_format"]["json_schema"]["name"] == "Pair"


async def test_openai_dict_formats_pass_through_unparsed(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(text='{"a": 1}'))
    response = await make_manager("openai").chat("Pair?", response_format={"type": "json_object"})
    assert response.parsed is None
    assert sim.last_request("openai").body["response_format"] == {"type": "json_object"}


async def test_simulator_default_answer_follows_the_schema(make_manager: Any) -> None:
    # No script: the simulator answers with an example built from the schema it received.
    response = await make_manager("openai").chat("Who?", response_format=Person)
    assert isinstance(response.parsed, Person)


async def test_cache_hit_is_parsed_and_keyed_by_schema(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(text=json.dumps(GOOD)), times=1)
    sim.script("openai", Reply(text=json.dumps({"street": "2 Loop Rd", "city": "Leeds"})), times=1)
    manager = make_manager("openai", cache={"enabled": True, "backend": "memory"})
    first = await manager.chat("Who?", response_format=Person)
    again = await manager.chat("Who?", response_format=Person)
    assert again.cache_hit and again.parsed == first.parsed and isinstance(again.parsed, Person)
    # Another type is another request: not answered from the Person entry.
    other = await manager.chat("Who?", response_format=Address)
    assert not other.cache_hit and other.parsed == Address(street="2 Loop Rd", city="Leeds")
    assert len(sim.requests_for("openai")) == 2
