"""Tools from Python functions and pydantic models: golden JSON schemas, docstring styles, argument parsing."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from spoon_llm import FunctionTool, OutputValidationError, ToolCall, ToolSpec, ValidationError, tool
from spoon_llm.tools import as_tool


class Unit(str, Enum):
    C = "celsius"
    F = "fahrenheit"


class Location(BaseModel):
    """A place."""

    city: str
    country: str = "FR"


def get_weather(location: Location, unit: Unit = Unit.C, days: int = 1,
                detail: Literal["short", "full"] = "short", note: str | None = None) -> str:
    """Get the weather forecast.

    Looks it up in the forecast service.

    Args:
        location: Where to look.
        unit: Temperature unit.
        days: How many days ahead.
        detail: How much to say.
        note: Free text for the forecaster.
    """
    return f"{location.city}: sunny"


GOLDEN_WEATHER = {
    "name": "get_weather",
    "description": "Get the weather forecast.\n\nLooks it up in the forecast service.",
    "parameters": {
        "$defs": {
            "Location": {
                "description": "A place.",
                "properties": {"city": {"type": "string"}, "country": {"default": "FR", "type": "string"}},
                "required": ["city"],
                "title": "Location",
                "type": "object",
            },
            "Unit": {"enum": ["celsius", "fahrenheit"], "title": "Unit", "type": "string"},
        },
        "additionalProperties": False,
        "properties": {
            "location": {"$ref": "#/$defs/Location", "description": "Where to look."},
            "unit": {"$ref": "#/$defs/Unit", "default": "celsius", "description": "Temperature unit."},
            "days": {"default": 1, "description": "How many days ahead.", "type": "integer"},
            "detail": {"default": "short", "description": "How much to say.", "enum": ["short", "full"],
                       "type": "string"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None,
                     "description": "Free text for the forecaster."},
        },
        "required": ["location"],
        "type": "object",
    },
}


def test_function_schema_golden() -> None:
    made = as_tool(get_weather)
    assert isinstance(made, FunctionTool)
    assert made.spec.model_dump(exclude_none=True) == GOLDEN_WEATHER


def numpy_style(query: str, limit: int = 10) -> list[str]:
    """Search the index.

    Parameters
    ----------
    query : str
        What to look for.
    limit : int
        Most results to return.
    """
    return []


def sphinx_style(query: str, limit: int = 10) -> list[str]:
    """Search the index.

    :param query: What to look for.
    :param limit: Most results to return.
    """
    return []


@pytest.mark.parametrize("function", [numpy_style, sphinx_style])
def test_numpy_and_sphinx_docstrings(function: Any) -> None:
    spec = as_tool(function).spec
    assert spec.description == "Search the index."
    assert spec.parameters == {
        "additionalProperties": False,
        "properties": {
            "query": {"description": "What to look for.", "type": "string"},
            "limit": {"default": 10, "description": "Most results to return.", "type": "integer"},
        },
        "required": ["query"],
        "type": "object",
    }


async def no_arguments() -> str:
    """Current time."""
    return "noon"


def annotated(count: Annotated[int, Field(ge=1, description="How many.")]) -> int:
    return count


def test_async_function_without_arguments_and_annotated_fields() -> None:
    made = as_tool(no_arguments)
    assert isinstance(made, FunctionTool) and made.is_async
    assert made.spec.parameters == {"additionalProperties": False, "properties": {}, "type": "object"}
    assert as_tool(annotated).spec.parameters["properties"]["count"] == {
        "description": "How many.", "minimum": 1, "type": "integer"}


class SearchQuery(BaseModel):
    """Search the web."""

    query: str = Field(description="The search terms.")
    site: str | None = None


def test_pydantic_model_tool() -> None:
    made = as_tool(SearchQuery)
    assert isinstance(made, FunctionTool) and not made.runnable
    assert made.spec.model_dump(exclude_none=True) == {
        "name": "SearchQuery",
        "description": "Search the web.",
        "parameters": {
            "properties": {"query": {"description": "The search terms.", "type": "string"},
                           "site": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}},
            "required": ["query"],
            "type": "object",
        },
    }


def test_tool_call_parse_validates_arguments() -> None:
    call = ToolCall.create("SearchQuery", {"query": "spoon"})
    assert call.parse(SearchQuery) == SearchQuery(query="spoon")
    with pytest.raises(OutputValidationError) as caught:
        ToolCall.create("SearchQuery", {"site": 3}).parse(SearchQuery)
    assert {tuple(e["loc"]) for e in caught.value.errors} == {("query",), ("site",)}
    assert caught.value.raw_text == '{"site": 3}'
    with pytest.raises(OutputValidationError):
        ToolCall.create("SearchQuery", "{not json").parse(SearchQuery)


def test_function_tool_validates_its_arguments() -> None:
    made = as_tool(get_weather)
    assert isinstance(made, FunctionTool)
    args = made.validate(ToolCall.create("get_weather", {"location": {"city": "Paris"}, "unit": "fahrenheit"}))
    assert args.location == Location(city="Paris") and args.unit is Unit.F
    with pytest.raises(OutputValidationError):
        made.validate(ToolCall.create("get_weather", {"location": {"city": "Paris"}, "bogus": 1}))


def test_tool_decorator_renames_and_redescribes() -> None:
    @tool(name="weather", description="Weather now.")
    def current(city: str) -> str:
        """Ignored."""
        return city

    assert current.spec.name == "weather" and current.spec.description == "Weather now."
    assert tool(get_weather).spec.name == "get_weather"


def test_unsupported_callables_are_rejected_clearly() -> None:
    def star(*args: int) -> None: ...

    def positional(a: int, /) -> None: ...

    with pytest.raises(ValidationError, match=r"\*args"):
        as_tool(star)
    with pytest.raises(ValidationError, match="positional-only"):
        as_tool(positional)
    with pytest.raises(ValidationError, match="a tool must be"):
        as_tool(42)


def test_specs_and_dicts_pass_through() -> None:
    spec = ToolSpec(name="x")
    assert as_tool(spec) is spec
    assert as_tool({"name": "y", "parameters": {"type": "object"}}) == ToolSpec(name="y",
                                                                                 parameters={"type": "object"})


async def test_parameter_names_pydantic_reserves() -> None:
    def reserved(schema: str, model_config: int = 1, _debug: bool = False) -> str:
        return f"{schema}-{model_config}-{_debug}"

    made = as_tool(reserved)
    assert isinstance(made, FunctionTool)
    assert list(made.spec.parameters["properties"]) == ["schema", "model_config", "_debug"]
    call = ToolCall.create("reserved", {"schema": "x", "model_config": 3, "_debug": True})
    assert await made.run(call) == "x-3-True"
