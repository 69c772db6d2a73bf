"""The output schema of a typed request, and the form each vendor's structured-output mechanism wants it in.

:class:`OutputSchema` is built once from what the caller passed as ``response_format`` (a pydantic model, any
type pydantic's ``TypeAdapter`` understands, or a bare JSON schema) and travels to the providers as the call's
``response_format``. Each wire converter asks it for its own dialect:

* OpenAI-style ``json_schema`` with ``strict: true`` (:meth:`OutputSchema.openai`): every object closed with
  ``additionalProperties: false``, every property listed in ``required`` (fields with defaults must then be
  produced), ``$ref`` with sibling keywords inlined, and the keywords strict mode rejects dropped. A schema strict
  mode cannot express (free-form maps) is sent with ``strict: false``.
* Anthropic ``output_config.format`` and Bedrock ``outputConfig`` (:meth:`OutputSchema.anthropic`): objects closed,
  numeric / length / count constraints removed and restated in the description (pydantic still enforces them when
  the answer is validated). A schema with free-form maps is not expressible: :meth:`anthropic` returns ``None`` and
  the provider asks for JSON by instruction instead.
* Gemini ``responseJsonSchema`` (:meth:`OutputSchema.gemini`): the JSON schema as it is.

A root that is not an object (``list[Item]``, ``int``) is wrapped as ``{"result": ...}`` for every vendor (OpenAI
and Anthropic want an object at the root) and unwrapped before validation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cached_property, lru_cache
from typing import Any

__all__ = ["WRAPPER_KEY", "OutputSchema", "object_root"]

#: The property a non-object root is wrapped in.
WRAPPER_KEY = "result"

# Keywords OpenAI's strict mode rejects (pydantic validates them after the answer arrives).
_OPENAI_DROP = frozenset({"default", "minLength", "maxLength", "uniqueItems", "minProperties", "maxProperties",
                          "examples", "discriminator", "patternProperties", "contentEncoding", "contentMediaType"})
# Keywords Anthropic's structured outputs reject; kept in the description so the model still sees them.
_ANTHROPIC_RESTATE = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
                      "maxLength", "maxItems", "uniqueItems", "minProperties", "maxProperties", "pattern")
_ANTHROPIC_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6",
                                "uuid"})


class OutputSchema:
    """What the answer must look like: a JSON schema, its name and (when given) the Python type to validate into.

    Build it with :meth:`from_format`; ``schema`` is pydantic's JSON schema of the type, wrapped in
    ``{"result": ...}`` when its root is not an object (``wrapped`` is then true).
    """

    def __init__(self, schema: Mapping[str, Any], *, name: str = "response", output_type: Any = None,
                 wrapped: bool = False) -> None:
        self.schema: dict[str, Any] = dict(schema)
        self.name = name
        self.output_type = output_type
        self.wrapped = wrapped

    @classmethod
    def from_format(cls, response_format: Any) -> OutputSchema:
        """The schema of a pydantic model / ``TypeAdapter``-able type, or of a bare JSON schema dict."""
        if isinstance(response_format, OutputSchema):
            return response_format
        if isinstance(response_format, Mapping):
            schema = dict(response_format)
            name = _safe_name(str(schema.get("title") or "response"))
            return cls._rooted(schema, name, None)
        try:
            # Built once per type: the schema and each vendor's form of it are then reused by every request.
            return _for_type(response_format)
        except TypeError:  # an unhashable annotation
            return _for_type.__wrapped__(response_format)

    @classmethod
    def _rooted(cls, schema: dict[str, Any], name: str, output_type: Any) -> OutputSchema:
        schema = object_root(schema)
        if schema.get("type") == "object" and "properties" in schema:
            return cls(schema, name=name, output_type=output_type)
        defs = schema.pop("$defs", None)
        root: dict[str, Any] = {"type": "object", "properties": {WRAPPER_KEY: schema}, "required": [WRAPPER_KEY]}
        if defs:
            root["$defs"] = defs
        return cls(root, name=name, output_type=output_type, wrapped=True)

    # The per-vendor forms are computed once per schema (an OutputSchema is reused across turns and fallbacks).

    @cached_property
    def _openai(self) -> tuple[dict[str, Any], bool]:
        schema = copy.deepcopy(self.schema)
        defs = schema.get("$defs", {})
        try:
            return _strict(schema, defs, frozenset()), True
        except (_NotStrict, RecursionError):  # RecursionError: nesting deeper than Python's stack allows
            return copy.deepcopy(self.schema), False

    def openai(self) -> dict[str, Any]:
        """OpenAI's ``response_format``: ``{"type": "json_schema", "json_schema": {name, schema, strict}}``."""
        schema, strict = self._openai
        return {"type": "json_schema", "json_schema": {"name": self.name, "schema": schema, "strict": strict}}

    @cached_property
    def _anthropic(self) -> dict[str, Any] | None:
        if _recursive(self.schema):
            return None  # Anthropic's structured outputs reject recursive schemas
        schema = copy.deepcopy(self.schema)
        try:
            closed: dict[str, Any] = _closed(schema)
            return closed
        except _NotStrict:
            return None

    def anthropic(self) -> dict[str, Any] | None:
        """The schema for Anthropic's (and Bedrock's) native structured output; ``None`` when it cannot express it."""
        return self._anthropic

    def gemini(self) -> dict[str, Any]:
        """The schema for Gemini's ``responseJsonSchema``: JSON schema as it is."""
        return self.schema

    def instruction(self) -> str:
        """A system instruction asking for JSON that follows the schema (for vendors with JSON mode only)."""
        import json

        return ("Respond with a single valid JSON object and nothing else. It must follow this JSON schema: "
                + json.dumps(self.schema, separators=(",", ":")))

    def model_json_schema(self) -> dict[str, Any]:
        """The plain JSON schema (so code that accepts a pydantic model class accepts this too)."""
        return self.schema

    def model_dump(self, **_: Any) -> dict[str, Any]:
        """A plain form for cache keys: name and schema (the Python type validates, it does not change the ask)."""
        return {"name": self.name, "schema": self.schema}

    def __repr__(self) -> str:
        return f"OutputSchema(name={self.name!r}, wrapped={self.wrapped})"


@lru_cache(maxsize=256)
def _for_type(output_type: Any) -> OutputSchema:
    from pydantic import TypeAdapter

    schema = TypeAdapter(output_type).json_schema()
    # A class by its name; a generic alias (list[Item]) by its spelling, which names the item type too.
    label = output_type.__name__ if isinstance(output_type, type) else str(output_type).replace("typing.", "")
    return OutputSchema._rooted(schema, _safe_name(label), output_type)


def object_root(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a bare root reference (a recursive model's schema) replaced by the object it names."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and set(schema) <= {"$ref", "$defs"}:
        # The definition becomes the root; $defs stay, so the references inside it still resolve.
        target = schema.get("$defs", {}).get(ref.rsplit("/", 1)[-1])
        if isinstance(target, Mapping) and target.get("type") == "object":
            return {**target, "$defs": schema["$defs"]}
    return schema


class _NotStrict(Exception):
    """The schema holds something the vendor's constrained decoding cannot express."""


def _refs(node: Any) -> set[str]:
    """Names of the ``$defs`` entries ``node`` refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _recursive(schema: Mapping[str, Any]) -> bool:
    """Whether a definition refers back to itself, directly or through others."""
    defs = schema.get("$defs") or {}
    edges = {name: _refs(body) for name, body in defs.items()}
    for start in edges:
        seen: set[str] = set()
        stack = list(edges[start])
        while stack:
            name = stack.pop()
            if name == start:
                return True
            if name not in seen:
                seen.add(name)
                stack.extend(edges.get(name, ()))
    return False


def _safe_name(name: str) -> str:
    # OpenAI's name: ^[a-zA-Z0-9_-]{1,64}$ (a generic alias such as list[Item] has brackets).
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in name).strip("_")
    while "__" in cleaned:
        cleaned = cleaned.replace("__", "_")
    return (cleaned or "response")[:64]


def _resolve(node: dict[str, Any], defs: Mapping[str, Any],
             inlining: frozenset[str]) -> tuple[dict[str, Any], frozenset[str]]:
    """A ``$ref`` with sibling keywords (a described field) inlined: strict mode wants a bare ``$ref``.

    ``inlining`` names the definitions being inlined around ``node``; the names inside the result are returned.
    """
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) > 1 and ref.startswith("#/$defs/"):
        name = ref.rsplit("/", 1)[-1]
        if name in inlining:
            # A definition that refers to itself: inlining it again would never end, and a bare $ref is valid.
            return {"$ref": ref}, inlining
        target = defs.get(name)
        if isinstance(target, Mapping):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**copy.deepcopy(dict(target)), **rest}, inlining | {name}
    return node, inlining


def _strict(node: Any, defs: Mapping[str, Any], inlining: frozenset[str]) -> Any:
    """``node`` in OpenAI's strict subset (raises :class:`_NotStrict` when it has no strict form)."""
    if isinstance(node, list):
        return [_strict(n, defs, inlining) for n in node]
    if not isinstance(node, dict):
        return node
    node, inlining = _resolve(node, defs, inlining)
    for key in _OPENAI_DROP & node.keys():
        del node[key]
    if "allOf" in node and len(node["allOf"]) == 1:  # pydantic's older spelling of a described $ref
        only, inlining = _resolve(node.pop("allOf")[0], defs, inlining)
        node = {**only, **node}
    if node.get("type") == "object" or "properties" in node:
        extra = node.get("additionalProperties")
        if extra not in (None, False) or "properties" not in node:
            raise _NotStrict("a free-form map")
        node["additionalProperties"] = False
        node["required"] = list(node["properties"])
    for key, value in list(node.items()):
        if key == "$defs":  # inside a definition, a described reference to itself stays a bare $ref
            node[key] = {name: _strict(sub, defs, inlining | {name}) for name, sub in value.items()}
        elif key == "properties":
            node[key] = {name: _strict(sub, defs, inlining) for name, sub in value.items()}
        elif key in ("items", "anyOf", "oneOf", "prefixItems"):
            node[key] = _strict(value, defs, inlining)
    if "oneOf" in node:  # strict mode knows anyOf only; pydantic's tagged unions are disjoint anyway
        node["anyOf"] = node.pop("oneOf")
    return node


def _closed(node: Any) -> Any:
    """``node`` for Anthropic: objects closed, unsupported constraints moved into the description."""
    if isinstance(node, list):
        return [_closed(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "object" or "properties" in node:
        extra = node.get("additionalProperties")
        if extra not in (None, False) or "properties" not in node:
            raise _NotStrict("a free-form map")
        node["additionalProperties"] = False
    moved = [f"{key}: {node.pop(key)}" for key in _ANTHROPIC_RESTATE if key in node]
    if isinstance(node.get("minItems"), int) and node["minItems"] > 1:
        moved.append(f"minItems: {node.pop('minItems')}")
    if "format" in node and node["format"] not in _ANTHROPIC_FORMATS:
        moved.append(f"format: {node.pop('format')}")
    node.pop("discriminator", None)
    if moved:
        note = "{" + ", ".join(moved) + "}"
        node["description"] = f"{node['description']} {note}" if node.get("description") else note
    for key, value in list(node.items()):
        if key in ("properties", "$defs"):
            node[key] = {name: _closed(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "prefixItems"):
            node[key] = _closed(value)
    return node
