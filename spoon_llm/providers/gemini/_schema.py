"""JSON Schema -> the Gemini API's ``Schema`` (the OpenAPI subset used by ``parameters`` and ``responseSchema``).

Kept: ``type``, ``format`` (the ones Gemini accepts), ``title``, ``description``, ``nullable``, ``enum``,
``properties``, ``required``, ``items``, ``anyOf``, ``propertyOrdering``, ``default``, ``example``, and the
length/size/range bounds. Translated: ``$ref`` into ``$defs``/``definitions`` (inlined), ``oneOf`` -> ``anyOf``,
``type: [..., "null"]`` and ``anyOf`` with a ``null`` branch -> ``nullable``, ``const`` -> a one-value ``enum``,
``allOf`` (merged), ``examples`` -> ``example``, non-string ``enum`` values -> noted in the description.
Dropped (Gemini has no equivalent): ``additionalProperties``, ``$schema``, ``$id``, ``not``, ``if``/``then``,
``patternProperties``, exclusive bounds, ``multipleOf``, ``uniqueItems`` and unknown keywords.
A recursive ``$ref`` cannot be inlined: :class:`SchemaConversionError` says so and names the way out
(``schema_mode="json_schema"`` sends the schema unchanged as ``parametersJsonSchema``/``responseJsonSchema``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import ValidationError

__all__ = ["SchemaConversionError", "to_gemini_schema"]

_COPIED = ("title", "description", "pattern", "minLength", "maxLength", "minItems", "maxItems", "minProperties",
           "maxProperties", "minimum", "maximum", "default", "example", "propertyOrdering")
# Gemini's own schema keywords in snake_case, as some libraries write them.
_SNAKE_ALIASES = {"property_ordering": "propertyOrdering", "max_items": "maxItems", "min_items": "minItems",
                  "max_length": "maxLength", "min_length": "minLength", "max_properties": "maxProperties",
                  "min_properties": "minProperties"}
_FORMATS = {
    "string": frozenset({"date-time", "enum"}),
    "integer": frozenset({"int32", "int64"}),
    "number": frozenset({"float", "double"}),
}


class SchemaConversionError(ValidationError):
    """A JSON schema that the Gemini ``Schema`` subset cannot express."""


def to_gemini_schema(schema: Mapping[str, Any], *, where: str = "schema") -> dict[str, Any]:
    """The Gemini ``Schema`` for a JSON schema; ``where`` names it in errors (e.g. ``tool 'search'``)."""
    return _Converter(schema, where).convert(schema, ())


class _Converter:
    def __init__(self, root: Mapping[str, Any], where: str) -> None:
        self.root = root
        self.where = where

    def fail(self, message: str) -> SchemaConversionError:
        return SchemaConversionError(
            f"{self.where}: {message}; pass schema_mode='json_schema' (or options.schema_mode) to send the JSON "
            "schema unchanged",
            provider="gemini",
        )

    def resolve(self, ref: str) -> Mapping[str, Any]:
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            raise self.fail(f"cannot resolve $ref {ref!r} (only local '#/...' references are supported)")
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise self.fail(f"$ref {ref!r} points at nothing")
            node = node[part]
        if not isinstance(node, Mapping):
            raise self.fail(f"$ref {ref!r} is not a schema")
        return node

    def convert(self, node: Any, refs: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            return {}  # ``true`` / ``{}``: anything goes
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in refs:
                raise self.fail(f"recursive $ref {ref!r} cannot be inlined")
            # Keywords beside a $ref (a description, say) refine the target.
            merged = {**self.resolve(ref), **{k: v for k, v in node.items() if k != "$ref"}}
            return self.convert(merged, (*refs, ref))
        all_of = node.get("allOf")
        if isinstance(all_of, list) and all_of:
            return self.convert(_merge_all_of(node, all_of, self, refs), refs)

        out: dict[str, Any] = {}
        nullable = bool(node.get("nullable"))
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            nullable = nullable or len(kinds) < len(kind)
            if len(kinds) == 1:
                kind = kinds[0]
            else:
                kind = None
                if kinds:
                    rest = {k: v for k, v in node.items() if k not in ("type", "nullable")}
                    out["anyOf"] = [self.convert({**rest, "type": k}, refs) for k in kinds]
        if isinstance(kind, str) and kind != "null":
            out["type"] = kind
        elif kind == "null":
            nullable = True

        variants = node.get("anyOf", node.get("oneOf"))
        if isinstance(variants, list):
            kept = [v for v in variants if not (isinstance(v, Mapping) and v.get("type") == "null")]
            nullable = nullable or len(kept) < len(variants)
            converted = [self.convert(v, refs) for v in kept]
            if len(converted) == 1 and "type" not in out:
                # ``Optional[X]``: X itself, marked nullable; the outer keywords (description...) win.
                out = {**converted[0], **out}
            elif converted:
                out["anyOf"] = converted

        enum = [node["const"]] if "const" in node else node.get("enum")
        if isinstance(enum, list):
            values = [v for v in enum if v is not None]
            nullable = nullable or len(values) < len(enum)
            if all(isinstance(v, str) for v in values):
                out["enum"] = values
                out.setdefault("type", "string")
            else:
                # Gemini enums are strings only; keep the typed field and tell the model the allowed values.
                allowed = ", ".join(repr(v) for v in values)
                note = f"Allowed values: {allowed}."
                description = node.get("description")
                out["description"] = f"{description} {note}" if description else note

        for key in _COPIED:
            if key in node and key not in out:
                out[key] = node[key]
        for snake, camel in _SNAKE_ALIASES.items():
            if snake in node and camel not in out:
                out[camel] = node[snake]
        if "example" not in out and isinstance(node.get("examples"), list) and node["examples"]:
            out["example"] = node["examples"][0]
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS.get(str(out.get("type")), frozenset()):
            out["format"] = fmt

        properties = node.get("properties")
        if isinstance(properties, Mapping):
            out["properties"] = {name: self.convert(sub, refs) for name, sub in properties.items()}
            required = node.get("required")
            if isinstance(required, list):
                out["required"] = [name for name in required if name in properties]
            out.setdefault("type", "object")
        items = node.get("items")
        if isinstance(items, Mapping):
            out["items"] = self.convert(items, refs)
        elif isinstance(items, list) and items:
            out["items"] = {"anyOf": [self.convert(i, refs) for i in items]}
        elif isinstance(node.get("prefixItems"), list) and node["prefixItems"]:
            out["items"] = {"anyOf": [self.convert(i, refs) for i in node["prefixItems"]]}
        if nullable:
            out["nullable"] = True
        return out


def _merge_all_of(node: Mapping[str, Any], parts: list[Any], conv: _Converter,
                  refs: tuple[str, ...]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    for part in parts:
        if isinstance(part, Mapping) and isinstance(part.get("$ref"), str):
            ref = part["$ref"]
            if ref in refs:
                raise conv.fail(f"recursive $ref {ref!r} cannot be inlined")
            part = conv.resolve(ref)
        if not isinstance(part, Mapping):
            continue
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                merged["properties"] = {**(merged.get("properties") or {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*(merged.get("required") or []), *value]
            else:
                merged.setdefault(key, value)
    return merged
