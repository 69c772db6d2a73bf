"""Tools from Python: a function's signature and docstring (or a pydantic model) as a :class:`ToolSpec`.

The parameters' JSON schema is pydantic's, from a model built over the signature: defaults, enums, ``Literal``,
nested models and optional parameters mean what they mean to pydantic. Per-parameter descriptions come from the
docstring (Google, NumPy or Sphinx style, read by ``docstring-parser``), or from ``Annotated[..., Field(...)]``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, get_type_hints

from ..errors import ValidationError
from ..types import ToolCall, ToolSpec

__all__ = ["FunctionTool", "as_tool", "is_python_tool", "tool"]


def _schema_generator() -> type[Any]:
    from pydantic.json_schema import GenerateJsonSchema

    class _Untitled(GenerateJsonSchema):
        # A field's title repeats its name: tokens for nothing in every request.
        def field_title_should_be_set(self, schema: Any) -> bool:
            return False

    return _Untitled


class FunctionTool:
    """A tool the model may call: its :class:`ToolSpec` and, for a function, how to run it.

    ``spec`` is what is sent; ``args_model`` validates the arguments of a call; ``function`` (``None`` for a
    tool made from a pydantic model) runs it: awaited when it is a coroutine function, else in a worker thread.
    """

    def __init__(self, spec: ToolSpec, args_model: type[Any], function: Callable[..., Any] | None = None,
                 *, unpack: bool = True, parameters: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.args_model = args_model
        self.function = function
        self._unpack = unpack
        #: The function's parameter name for each field of ``args_model`` (they differ for names pydantic reserves).
        self._parameters = parameters if parameters is not None else {name: name for name in args_model.model_fields}
        self.is_async = function is not None and inspect.iscoroutinefunction(function)

    @property
    def name(self) -> str:
        """The name the model calls the tool by."""
        return self.spec.name

    @property
    def runnable(self) -> bool:
        """Whether there is a function to run (a tool from a pydantic model is only described)."""
        return self.function is not None

    def validate(self, call: ToolCall) -> Any:
        """The call's arguments validated (an instance of ``args_model``); raises ``OutputValidationError``."""
        return call.parse(self.args_model)

    async def run(self, call: ToolCall) -> Any:
        """Validate the call's arguments and run the function with them; returns what the function returned."""
        if self.function is None:
            raise ValidationError(f"tool {self.name!r} was made from a model and has no function to run")
        args = self.validate(call)
        kwargs = {param: getattr(args, field) for field, param in self._parameters.items()} if self._unpack else {}
        if self.is_async:
            return await self.function(**kwargs)
        return await asyncio.to_thread(functools.partial(self.function, **kwargs))

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r}, runnable={self.runnable})"


def is_python_tool(value: Any) -> bool:
    """Whether ``value`` is a tool given as Python (a function, a pydantic model class or a :class:`FunctionTool`)."""
    if isinstance(value, (ToolSpec, Mapping)):
        return False
    return isinstance(value, FunctionTool) or callable(value)


def as_tool(value: Any) -> FunctionTool | ToolSpec:
    """``value`` as a tool: functions and pydantic models become :class:`FunctionTool`, specs and dicts specs."""
    if isinstance(value, (FunctionTool, ToolSpec)):
        return value
    if isinstance(value, Mapping):
        return ToolSpec.model_validate(value)
    if isinstance(value, type) and hasattr(value, "model_json_schema"):
        return _model_tool(value)
    if callable(value):
        try:
            hash(value)
        except TypeError:  # a callable object without __hash__: described afresh every time, not cached
            return _function_tool.__wrapped__(value)
        return _function_tool(value)
    raise ValidationError(f"a tool must be a function, a pydantic model, a ToolSpec or a dict, not "
                          f"{type(value).__name__}")


def tool(function: Callable[..., Any] | None = None, *, name: str | None = None,
         description: str | None = None) -> Any:
    """A :class:`FunctionTool` from ``function``, optionally renamed or re-described; usable as a decorator.

    Example::

        @tool(name="weather")
        async def get_weather(city: str) -> str:
            '''Current weather in a city.'''
    """
    def build(fn: Callable[..., Any]) -> FunctionTool:
        made = as_tool(fn)
        assert isinstance(made, FunctionTool)
        if name is None and description is None:
            return made
        spec = made.spec.model_copy(update={k: v for k, v in (("name", name), ("description", description))
                                            if v is not None})
        return FunctionTool(spec, made.args_model, made.function, unpack=made._unpack, parameters=made._parameters)

    return build if function is None else build(function)


def _json_schema(model: type[Any], tool_name: str) -> dict[str, Any]:
    """The JSON schema of a tool's arguments; a type pydantic cannot describe is the caller's error, named."""
    from pydantic.errors import PydanticUserError  # PydanticSchemaGenerationError and PydanticInvalidForJsonSchema

    try:
        schema: dict[str, Any] = model.model_json_schema(schema_generator=_schema_generator())
    except PydanticUserError as exc:
        raise ValidationError(f"tool {tool_name!r}: its arguments cannot be described as a JSON schema: "
                              f"{_first_line(exc)}") from exc
    return schema


def _first_line(exc: BaseException) -> str:
    # pydantic's messages go on with paragraphs of advice and a documentation link.
    return str(exc).strip().split("\n", 1)[0]


@functools.lru_cache(maxsize=512)
def _model_tool(model: type[Any]) -> FunctionTool:
    from ..structured._schema import object_root

    # A recursive model's schema is a bare $ref; the tool's parameters must be an object at the root.
    schema = object_root(_json_schema(model, model.__name__))
    schema.pop("title", None)
    description = schema.pop("description", None) or _doc_summary(inspect.getdoc(model))
    spec = ToolSpec(name=model.__name__, description=description, parameters=schema)
    return FunctionTool(spec, model, None, unpack=False)


def _doc_summary(doc: str | None) -> str | None:
    if not doc:
        return None
    import docstring_parser

    parsed = docstring_parser.parse(doc)
    parts = [p for p in (parsed.short_description, parsed.long_description) if p]
    return "\n\n".join(parts) or None


@functools.lru_cache(maxsize=512)
def _function_tool(function: Callable[..., Any]) -> FunctionTool:
    from pydantic import ConfigDict, Field, create_model

    target: Any = function
    while isinstance(target, functools.partial):
        # Its hints, name and docstring are the wrapped function's (the signature below is the partial's own).
        target = target.func
    name = getattr(target, "__name__", None)
    if name is None or not (inspect.isfunction(target) or inspect.ismethod(target)):
        # A callable object: describe its __call__ (the signature below leaves out self).
        target, name = type(target).__call__, type(target).__name__
    try:
        signature = inspect.signature(function)
        hints = get_type_hints(target, include_extras=True)
    except (NameError, TypeError, ValueError) as exc:
        raise ValidationError(f"cannot read the signature of tool {name!r}: {exc}") from None
    import docstring_parser

    doc = docstring_parser.parse(inspect.getdoc(target) or "")
    descriptions = {p.arg_name: p.description for p in doc.params if p.description}
    from pydantic import BaseModel

    fields: dict[str, Any] = {}
    parameters: dict[str, str] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ValidationError(f"tool {name!r}: *{param.name} / **{param.name} cannot be described to a "
                                  "model; give each parameter a name")
        if param.kind is param.POSITIONAL_ONLY:
            raise ValidationError(f"tool {name!r}: parameter {param.name!r} is positional-only; tools are called "
                                  "with keyword arguments")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        described = descriptions.get(param.name)
        extra: dict[str, Any] = {"description": described} if described else {}
        field = param.name
        if field.startswith("_") or hasattr(BaseModel, field):
            # A name pydantic reserves (model_config, schema, _private): a field under another name, aliased back.
            field, extra["alias"] = f"arg{field}" if field.startswith("_") else f"arg_{field}", param.name
        # Only a docstring description is set here, so one given by Annotated[..., Field(...)] survives.
        fields[field] = (annotation, Field(default, **extra))
        parameters[field] = param.name
    from pydantic.errors import PydanticUserError

    try:
        args_model = create_model(
            f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    except PydanticUserError as exc:  # e.g. an annotation pydantic has no schema for (socket.socket)
        raise ValidationError(f"tool {name!r}: a parameter's type cannot be validated: {_first_line(exc)}") from exc
    schema = _json_schema(args_model, name)
    schema.pop("title", None)
    schema.setdefault("properties", {})
    parts = [p for p in (doc.short_description, doc.long_description) if p]
    spec = ToolSpec(name=name, description="\n\n".join(parts) or None, parameters=schema)
    return FunctionTool(spec, args_model, function, parameters=parameters)
