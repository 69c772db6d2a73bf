"""Vendor-neutral answers: the default echo reply, scripted replies, token estimates, embeddings.

The default answer is deterministic so tests can assert on it:

* text: ``"Simulated reply to: " + <text of the last user message>`` (its text parts joined with a
  space, cut to the first 200 characters);
* JSON mode (OpenAI ``response_format``, Anthropic ``output_config.format``, Gemini
  ``responseMimeType: application/json``): a JSON object that fits the given schema (strings
  ``"simulated"``, numbers 0, booleans false, one item per array, first enum value), or
  ``{"reply": <echo text>}`` when no schema is given;
* a forced tool choice (OpenAI ``required`` / named function, Anthropic ``any`` / ``tool``,
  Gemini ``ANY``): a call to that tool (the first one for ``required``/``any``) with arguments
  built from its parameter schema the same way;
* thinking enabled (Anthropic ``thinking``, Gemini ``includeThoughts``): reasoning text
  ``"Simulated thinking about: <user text>"``;
* ``max_tokens`` smaller than the estimate: the text is cut to ``4 * max_tokens`` characters and
  the finish reason is ``length``.

Token counts are estimated as one token per 4 characters (rounded up), input at least 1.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _json
from ._script import Reply

ECHO_PREFIX = "Simulated reply to: "
THINKING_PREFIX = "Simulated thinking about: "
ECHO_LIMIT = 200

_WORDS = re.compile(r"\s*\S+")


def estimate_tokens(chars: int) -> int:
    """Estimate a token count from a character count (4 characters per token, rounded up)."""
    return (chars + 3) // 4


def split_chunks(text: str) -> list[str]:
    """Split text into word-sized stream deltas whose concatenation is exactly ``text``."""
    if not text:
        return []
    pieces: list[str] = _WORDS.findall(text)
    tail = text[sum(map(len, pieces)) :]  # trailing whitespace, if any
    if tail:
        pieces.append(tail)
    return pieces


@dataclass
class Prompt:
    """What the simulator needs from a request, extracted by the vendor's wire module."""

    model: str = ""
    stream: bool = False
    user_text: str = ""
    input_chars: int = 0
    tools: dict[str, Any] = field(default_factory=dict)  # tool name -> parameters schema
    forced_tool: str | None = None
    json_mode: bool = False
    json_schema: Any = None
    n: int = 1
    include_usage: bool = False
    max_tokens: int | None = None
    thinking: bool = False


@dataclass
class AnswerCall:
    """A tool call ready for rendering: id, name, argument JSON text and parsed arguments.

    ``explicit_id`` tells whether the script gave the id (Gemini only sends ids it was given).
    """

    id: str
    name: str
    arguments_json: str
    arguments: dict[str, Any]
    explicit_id: bool = False


@dataclass
class Answer:
    """A resolved answer: text, tool calls, reasoning, finish reason and token counts."""

    text: str | None
    tool_calls: list[AnswerCall]
    reasoning: str | None
    finish: str  # normalised ("stop", "length", "tool_calls", "content_filter") or vendor-native
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    chunks: list[str] | None = None

    def text_chunks(self) -> list[str]:
        """Return the stream deltas for the text."""
        if self.chunks is not None:
            return self.chunks
        return split_chunks(self.text or "")


def _ref(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return {}
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return node


def schema_example(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """Build a small value that satisfies a JSON schema (also Gemini's upper-case ``type``)."""
    if not isinstance(schema, Mapping) or depth > 12:
        return None
    if root is None:
        root = schema
    if "$ref" in schema:
        return schema_example(_ref(schema, root), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            return schema_example((non_null or options)[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = kind.lower() if isinstance(kind, str) else ("object" if "properties" in schema else "string")
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, Mapping):
            return {}
        return {name: schema_example(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [schema_example(schema.get("items", {}), root, depth + 1)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        value = low if isinstance(low, (int, float)) else 0
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2025-01-01T00:00:00Z"
    if fmt == "date":
        return "2025-01-01"
    return "simulated"


def _resolve_calls(reply: Reply, make_id: Any) -> list[AnswerCall]:
    calls: list[AnswerCall] = []
    for call in reply.tool_calls:
        if isinstance(call.arguments, str):
            raw = call.arguments
            try:
                parsed = _json.loads(raw) if raw.strip() else {}
            except ValueError:
                parsed = {}
            if not isinstance(parsed, dict):
                parsed = {}
        else:
            parsed = dict(call.arguments)
            raw = _json.dumps_str(parsed)
        calls.append(AnswerCall(call.id or make_id(), call.name, raw, parsed, call.id is not None))
    return calls


def resolve(prompt: Prompt, reply: Reply | None, make_id: Any) -> Answer:
    """Turn a scripted reply (or ``None`` for the default answer) into an :class:`Answer`.

    ``make_id`` is a zero-argument callable that returns a fresh tool-call id.
    """
    finish: str
    reasoning: str | None
    chunks: list[str] | None = None
    if reply is None:
        text: str | None
        calls: list[AnswerCall] = []
        echo = ECHO_PREFIX + prompt.user_text[:ECHO_LIMIT]
        finish = "stop"
        if prompt.forced_tool is not None:
            args = schema_example(prompt.tools.get(prompt.forced_tool) or {})
            if not isinstance(args, dict):
                args = {}
            calls.append(AnswerCall(make_id(), prompt.forced_tool, _json.dumps_str(args), args))
            text = None
            finish = "tool_calls"
        elif prompt.json_mode:
            if prompt.json_schema is not None:
                text = _json.dumps_str(schema_example(prompt.json_schema))
            else:
                text = _json.dumps_str({"reply": echo})
        else:
            text = echo
        reasoning = THINKING_PREFIX + prompt.user_text[:ECHO_LIMIT] if prompt.thinking else None
        if text is not None and prompt.max_tokens is not None and estimate_tokens(len(text)) > prompt.max_tokens:
            text = text[: max(0, prompt.max_tokens) * 4]
            finish = "length"
        usage = None
    else:
        calls = _resolve_calls(reply, make_id)
        text = reply.text
        if text is None and not calls:
            text = ECHO_PREFIX + prompt.user_text[:ECHO_LIMIT]
        reasoning = reply.reasoning
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        usage = reply.usage
        if reply.chunks is not None:
            chunks = list(reply.chunks)
    in_tokens = max(1, estimate_tokens(prompt.input_chars))
    reasoning_tokens = estimate_tokens(len(reasoning)) if reasoning else 0
    visible = len(text or "") + sum(len(c.arguments_json) + len(c.name) for c in calls)
    out_tokens = estimate_tokens(visible) + reasoning_tokens
    cached = cache_write = 0
    if usage is not None:
        if usage.reasoning_tokens is not None:
            reasoning_tokens = usage.reasoning_tokens
            out_tokens = estimate_tokens(visible) + reasoning_tokens
        in_tokens = usage.input_tokens if usage.input_tokens is not None else in_tokens
        out_tokens = usage.output_tokens if usage.output_tokens is not None else out_tokens
        cached = usage.cached_tokens or 0
        cache_write = usage.cache_write_tokens or 0
    return Answer(
        text=text,
        tool_calls=calls,
        reasoning=reasoning,
        finish=finish,
        input_tokens=in_tokens,
        output_tokens=out_tokens,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning_tokens,
        chunks=chunks,
    )


def embedding(text: str, dimensions: int) -> list[float]:
    """Return a deterministic unit vector for ``text`` (same text, same vector)."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    rng = random.Random(seed)
    values = [rng.random() - 0.5 for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 8) for v in values]


def embedding_base64(values: list[float]) -> str:
    """Encode a vector as OpenAI does for ``encoding_format="base64"``: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
