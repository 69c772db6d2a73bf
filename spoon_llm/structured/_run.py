"""The layer above one ``manager.chat``: typed output (with re-asks), tools from Python and ``run_tools=True``.

The manager hands a call here only when it asks for one of these (see :func:`wants_layer`); each model call this
layer makes is an ordinary ``manager.chat`` / ``chat_stream`` through the whole chain, so budgets, rate limits, the
response cache and fallback apply to every re-ask and every tool turn, and the parsed type is the same whichever
provider answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from ..errors import OutputValidationError, ValidationError
from ..types import LLMResponse, LLMResponseChunk, Message, ToolSpec, to_messages
from ._parse import feedback, parse_response
from ._schema import OutputSchema
from ._turns import Turns

if TYPE_CHECKING:
    from ..manager import LLMManager

__all__ = ["layered_chat", "layered_stream", "wants_layer"]

#: Keywords only this layer understands; never sent to a provider.
_LAYER_KWARGS = ("output_retries", "run_tools", "max_turns", "tool_errors")
#: JSON schema's type names: a dict whose ``type`` is another word (json_object, json_schema, text) is a
#: provider's own ``response_format``, passed on as it is.
_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
#: Keywords that make a dict without ``type`` a JSON schema (a union, a reference, an enum).
_SCHEMA_KEYWORDS = frozenset({"properties", "items", "prefixItems", "$ref", "$defs", "anyOf", "oneOf", "allOf",
                              "enum", "const"})


def _typed_format(response_format: Any) -> bool:
    """Whether ``response_format`` asks for a parsed answer: a type, or a bare JSON schema (not OpenAI's wrapper)."""
    if response_format is None or isinstance(response_format, (str, OutputSchema)):
        return False
    if isinstance(response_format, Mapping):
        kind = response_format.get("type")
        if kind is None:
            return not _SCHEMA_KEYWORDS.isdisjoint(response_format)
        kinds = kind if isinstance(kind, list) else [kind]
        return bool(kinds) and all(isinstance(k, str) and k in _JSON_TYPES for k in kinds)
    return True


def wants_layer(kwargs: Mapping[str, Any]) -> bool:
    """Whether a call needs this layer (checked by the manager only when a call has keyword arguments)."""
    if _typed_format(kwargs.get("response_format")):
        return True
    for key in _LAYER_KWARGS:
        if key in kwargs:
            return True
    tools = kwargs.get("tools")
    if tools:
        from ..tools._function import is_python_tool

        if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
            raise ValidationError(f"tools must be a list (of functions, models, ToolSpecs or dicts), not "
                                  f"{type(tools).__name__}")
        return any(is_python_tool(t) for t in tools)
    return False


def _positive_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"{name}={value!r}: must be an integer >= {minimum}")
    return value


def _split(kwargs: dict[str, Any]) -> tuple[OutputSchema | None, dict[str, Any]]:
    """The typed schema (if any) and the layer settings, taken out of ``kwargs``."""
    settings = {key: kwargs.pop(key) for key in _LAYER_KWARGS if key in kwargs}
    response_format = kwargs.get("response_format")
    schema = None
    if _typed_format(response_format) or isinstance(response_format, OutputSchema):
        try:
            schema = OutputSchema.from_format(response_format)
        except Exception as exc:  # pydantic cannot build a schema for it
            raise ValidationError(f"response_format={response_format!r} is not a pydantic model, a type pydantic "
                                  f"can validate, or a JSON schema: {exc}") from None
        kwargs["response_format"] = schema
    elif "output_retries" in settings and settings["output_retries"]:
        raise ValidationError("output_retries needs a typed response_format (a pydantic model, a type or a JSON "
                              "schema) to validate the answer against")
    return schema, settings


async def layered_chat(manager: LLMManager, messages: Any, kwargs: dict[str, Any]) -> LLMResponse:
    """``manager.chat`` with typed output, Python tools and the optional tool loop (``kwargs`` include routing)."""
    from ..tools._loop import check_tool_errors, run_tool_loop, split_tools

    kwargs = dict(kwargs)
    schema, settings = _split(kwargs)
    retries = _positive_int(settings.get("output_retries", 0), "output_retries", 0)
    tools = split_tools(kwargs.pop("tools", None))
    run_tools = settings.get("run_tools", False)
    if not isinstance(run_tools, bool):  # "no" would be true
        raise ValidationError(f"run_tools must be True or False, not {run_tools!r}")
    if run_tools:
        max_turns = _positive_int(settings.get("max_turns", 10), "max_turns", 1)
        tool_errors = settings.get("tool_errors", "return")
        check_tool_errors(tool_errors)
        if not any(getattr(t, "runnable", False) for t in tools):
            raise ValidationError("run_tools=True needs tools given as Python functions (tools=[my_function])")
        if schema is not None:  # the loop sends the schema itself; a plain format (json_object) travels in kwargs
            kwargs.pop("response_format", None)
        return await run_tool_loop(manager, messages, tools, schema=schema, output_retries=retries,
                                   max_turns=max_turns, tool_errors=tool_errors, call=kwargs)
    for key in ("max_turns", "tool_errors"):
        if key in settings:
            raise ValidationError(f"{key} applies with run_tools=True only")
    if tools:
        kwargs["tools"] = _specs(tools)
    if schema is None:
        return await manager.chat(messages, **kwargs)
    return await _ask(manager, messages, schema, retries, kwargs)


def _specs(tools: list[Any]) -> list[ToolSpec]:
    from ..tools._loop import specs_of

    return specs_of(tools)


async def _ask(manager: LLMManager, messages: Any, schema: OutputSchema, retries: int,
               kwargs: dict[str, Any]) -> LLMResponse:
    """Ask, validate, and re-ask with the errors up to ``retries`` times."""
    conversation: list[Any] | None = None
    turns = Turns()
    while True:
        response = await manager.chat(messages if conversation is None else conversation, **kwargs)
        turns.add(response)
        if response.tool_calls:
            # The model called a tool (any text beside it is a preamble): the caller runs it; nothing to parse yet.
            return turns.combined()
        try:
            parsed = parse_response(schema, response)
        except OutputValidationError as exc:
            turns.mark_failed("OutputValidationError")
            if response.refusal or turns.reasks >= retries:
                exc.response = turns.combined()
                raise
            turns.reasks += 1
            if conversation is None:
                conversation = list(to_messages(messages))
            conversation += [response.to_message(), Message.user(feedback(exc))]
            continue
        return turns.combined(parsed=parsed)


async def layered_stream(manager: LLMManager, messages: Any, kwargs: dict[str, Any]
                         ) -> AsyncIterator[LLMResponseChunk]:
    """``manager.chat_stream`` whose final chunk carries ``parsed`` (tools given as Python are described)."""
    kwargs = dict(kwargs)
    schema, settings = _split(kwargs)
    for key in _LAYER_KWARGS:
        # False / 0 ask for nothing; max_turns and tool_errors only mean something with run_tools.
        if settings.get(key) or (key in settings and key in ("max_turns", "tool_errors")):
            raise ValidationError(f"{key} works with chat(), not chat_stream(): a streamed answer has reached the "
                                  "caller before it can be validated or continued")
    if kwargs.get("tools"):
        from ..tools._loop import split_tools

        kwargs["tools"] = _specs(split_tools(kwargs["tools"]))
    stream = manager.chat_stream(messages, **kwargs)
    async with aclosing(stream):  # type: ignore[type-var]  # an async generator: it has aclose
        async for chunk in stream:
            if chunk.kind == "final" and schema is not None and not chunk.tool_calls:
                chunk.parsed = parse_response(schema, chunk)
            yield chunk
