"""Validating a model's text (or a tool call's arguments) into the requested Python type."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from ..errors import OutputValidationError
from ._schema import WRAPPER_KEY, OutputSchema

__all__ = ["adapter_for", "feedback", "parse_output", "parse_response", "validate_arguments"]


@lru_cache(maxsize=256)
def _adapter(output_type: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(output_type)


def adapter_for(output_type: Any) -> Any:
    """A (cached) ``TypeAdapter`` for ``output_type``; unhashable types get a fresh one."""
    try:
        return _adapter(output_type)
    except TypeError:  # an unhashable annotation
        from pydantic import TypeAdapter

        return TypeAdapter(output_type)


def _strip_fences(text: str) -> str:
    # Models asked for JSON by instruction (no constrained decoding) sometimes wrap it in a Markdown fence.
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped[3:-3]
        newline = stripped.find("\n")
        if newline != -1 and stripped[:newline].strip().isalpha():
            stripped = stripped[newline + 1:]
    return stripped.strip()


def parse_output(schema: OutputSchema, text: str, *, provider: str | None = None,
                 model: str | None = None) -> Any:
    """The answer ``text`` validated against ``schema`` (into its Python type when it has one).

    Raises :class:`OutputValidationError` with the raw text and the errors.
    """
    from pydantic import ValidationError as PydanticError

    try:
        data = json.loads(_strip_fences(text))
    except ValueError as exc:
        errors: list[Any] = [{"type": "json_invalid", "loc": (), "msg": f"the answer is not valid JSON: {exc}"}]
        raise OutputValidationError(f"the answer is not valid JSON for {schema.name}: {exc}", raw_text=text,
                                    errors=errors, provider=provider, model=model) from None
    if schema.wrapped:
        if not isinstance(data, dict) or WRAPPER_KEY not in data:
            errors = [{"type": "missing", "loc": (WRAPPER_KEY,), "msg": f"expected an object with {WRAPPER_KEY!r}"}]
            raise OutputValidationError(f"the answer for {schema.name} lacks {WRAPPER_KEY!r}", raw_text=text,
                                        errors=errors, provider=provider, model=model)
        data = data[WRAPPER_KEY]
    if schema.output_type is None:
        return data
    try:
        return adapter_for(schema.output_type).validate_python(data)
    except PydanticError as exc:
        errors = exc.errors(include_url=False)
        raise OutputValidationError(f"the answer does not validate as {schema.name}: {len(errors)} error(s): "
                                    f"{_summary(errors)}", raw_text=text, errors=errors, provider=provider,
                                    model=model) from None


def parse_response(schema: OutputSchema, response: Any) -> Any:
    """A response's (or final chunk's) content validated against ``schema``; a refusal is reported as such."""
    refusal = getattr(response, "refusal", None)
    if refusal and not response.content:
        raise OutputValidationError(f"the model refused to answer: {refusal}", raw_text="",
                                    errors=[{"type": "refusal", "loc": (), "msg": refusal}],
                                    provider=response.provider, model=response.model)
    return parse_output(schema, response.content, provider=response.provider, model=response.model)


def validate_arguments(output_type: Any, raw: str, *, tool_name: str) -> Any:
    """A tool call's JSON ``raw`` arguments validated as ``output_type``."""
    from pydantic import ValidationError as PydanticError

    try:
        return adapter_for(output_type).validate_json(raw if raw and raw.strip() else "{}")
    except PydanticError as exc:
        errors = exc.errors(include_url=False)
        raise OutputValidationError(f"the arguments of tool {tool_name!r} do not validate: {_summary(errors)}",
                                    raw_text=raw, errors=errors) from None


def _summary(errors: list[Any], limit: int = 3) -> str:
    parts = []
    for error in errors[:limit]:
        loc = ".".join(str(p) for p in error.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {error.get('msg')}")
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def feedback(error: OutputValidationError) -> str:
    """What the model is told when it is re-asked: the errors, and to answer again following the schema."""
    return ("Your previous answer did not match the required JSON schema. Errors: "
            + json.dumps([{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in error.errors],
                         default=str)
            + ". Answer again with only the corrected JSON.")
