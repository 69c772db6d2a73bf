"""The per-vendor forms of an output schema (pure transformations, no requests)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from spoon_llm import OutputSchema


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    lives: int = Field(default=9, le=9)


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    name: str = Field(min_length=1)


class Owner(BaseModel):
    pet: Cat | Dog = Field(discriminator="kind", description="Their pet.")
    best: Cat = Field(description="The best cat.")


def test_openai_strict_form() -> None:
    schema = OutputSchema.from_format(Owner)
    assert OutputSchema.from_format(Owner) is schema  # built once per type
    spec = schema.openai()["json_schema"]
    assert spec["strict"] is True and spec["name"] == "Owner"
    props = spec["schema"]["properties"]
    # A tagged union becomes anyOf (strict mode has no oneOf/discriminator); a described $ref is inlined.
    assert "oneOf" not in props["pet"] and "discriminator" not in props["pet"]
    assert [branch["$ref"] for branch in props["pet"]["anyOf"]] == ["#/$defs/Cat", "#/$defs/Dog"]
    assert props["best"]["description"] == "The best cat." and props["best"]["required"] == ["kind", "lives"]
    assert props["best"]["additionalProperties"] is False and "$ref" not in props["best"]
    dog = spec["schema"]["$defs"]["Dog"]
    assert "minLength" not in dog["properties"]["name"]  # rejected by strict mode; pydantic still checks it
    assert dog["required"] == ["kind", "name"]


def test_anthropic_form_restates_constraints() -> None:
    schema = OutputSchema.from_format(Owner).anthropic()
    assert schema is not None
    cat = schema["$defs"]["Cat"]
    assert cat["additionalProperties"] is False
    assert cat["properties"]["lives"] == {"default": 9, "title": "Lives", "type": "integer",
                                          "description": "{maximum: 9}"}
    assert schema["$defs"]["Dog"]["properties"]["name"]["description"] == "{minLength: 1}"


def test_non_object_roots_are_wrapped() -> None:
    schema = OutputSchema.from_format(list[int])
    assert schema.wrapped and schema.name == "list_int"
    assert schema.schema == {"type": "object", "properties": {"result": {"items": {"type": "integer"},
                                                                         "type": "array"}},
                             "required": ["result"]}
    assert OutputSchema.from_format(Literal["yes", "no"]).wrapped
