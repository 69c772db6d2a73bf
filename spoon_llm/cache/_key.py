"""Cache keys: one digest over everything that changes an answer, the same however the caller spelt it.

Two requests share a key when they go to the same provider section and model with the same conversation, tools,
tool choice, response format, sampling settings, stop sequences, seed, output limit and vendor options. Dict order
does not matter, nor whether a message was a dict or a :class:`~spoon_llm.types.Message`; a streamed and a whole
request share a key (a cached answer can be replayed either way).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..middleware.base import AttemptContext

__all__ = ["cache_key", "canonical_bytes", "canonical_request"]

#: Call settings that never change the answer (how long to wait, how to label it, how to cache it).
IGNORED_KWARGS = frozenset({"timeout", "tags", "cache", "cache_namespace", "callbacks", "request_id", "stream"})
#: Operations whose answers are cached, and the kind they are stored under (a stream replays a chat answer).
CACHEABLE = {"chat": "chat", "chat_stream": "chat", "chat_with_tools": "chat", "completion": "completion",
             "embed": "embed"}

try:  # orjson sorts keys in C; the standard library is the fallback of the core install
    import orjson

    def _dumps(value: Any) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=_plain)

    #: JSON of plain values whose key order is already fixed.
    _dumps_plain: Any = orjson.dumps
    #: Sorted JSON when every key is a string (the common case): a little cheaper than :func:`_dumps`.
    _dumps_str_keys: Any = orjson.dumps
    _SORT_KEYS = orjson.OPT_SORT_KEYS
except ImportError:  # pragma: no cover - exercised by the core-only install check
    def _dumps(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, default=_plain, separators=(",", ":")).encode()

    def _dumps_plain(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    _dumps_str_keys = None
    _SORT_KEYS = 0


def _plain(value: Any) -> Any:
    """JSON for what is not JSON already: pydantic models and model classes, sets, anything else by repr."""
    if isinstance(value, type):  # a class (a pydantic model given as response_format): its schema and name
        schema = getattr(value, "model_json_schema", None)
        if callable(schema):
            return {"schema": schema(), "name": value.__name__}
        return repr(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True, exclude_defaults=True)
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    return repr(value)


def _plain_message(message: Any) -> bool:
    """A plain ``{"role", "content": str}`` dict: already what a :class:`Message` dumps to."""
    return type(message) is dict and len(message) == 2 and type(message.get("content")) is str and "role" in message


def _message(message: Any) -> Any:
    """A message (a dict or a :class:`Message`) as the plain structure its key is made of."""
    from ..types import Message

    if not isinstance(message, Message):
        message = Message.model_validate(message)
    return message.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


#: Sampling settings that are numbers however they are written: ``temperature=1`` and ``1.0`` share a key.
_NUMBER_SETTINGS = frozenset({"temperature", "top_p", "frequency_penalty", "presence_penalty",
                              "repetition_penalty", "min_p", "top_a"})
#: The parts of a canonical request, in the order a key lists them.
_FIELDS = ("ns", "op", "provider", "model", "messages", "input", "settings")


def _messages(raw: Any) -> list[Any] | None:
    """A conversation as the plain structure its key is made of."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if isinstance(raw, Sequence):
        return [m if _plain_message(m) else _message(m) for m in raw]
    return [_message(raw)]


def canonical_bytes(ctx: AttemptContext, namespace: str = "") -> bytes:
    """The request of ``ctx`` as JSON: its parts as a list (the fixed order of :data:`_FIELDS`), keys sorted.

    What :func:`cache_key` digests; a backend that compares keys whole (memory) is keyed by it (less its opening
    ``[``: a slice is an exact-size copy, where orjson's bytes keep their whole buffer). Written
    as one function: it runs on every cached request, and a call costs as much as most of its lines.
    """
    raw = ctx.raw_messages
    messages: Any = raw
    if type(raw) is list:  # what the manager hands on: a list, most often of plain dicts
        for message in raw:  # _plain_message() written out: no call per message
            if (type(message) is not dict or len(message) != 2 or type(message.get("content")) is not str
                    or "role" not in message):
                messages = _messages(raw)
                break
    else:
        messages = _messages(raw)
    kwargs = ctx.kwargs
    settings = ({} if not kwargs or kwargs.keys() <= IGNORED_KWARGS
                else {k: v for k, v in kwargs.items() if v is not None and k not in IGNORED_KWARGS})
    if settings:
        for name in _NUMBER_SETTINGS.intersection(settings):  # 1 and 1.0 are the same JSON number
            if settings[name].__class__ is int:
                settings[name] = float(settings[name])
    if ctx.tools is not None:
        settings["tools"] = ctx.tools
    operation = ctx.operation
    deployment = ctx.deployment
    parts = [namespace, CACHEABLE.get(operation, operation), deployment.provider_name, ctx.model or deployment.model,
             messages, ctx.subject if operation in ("embed", "completion") else None, settings]
    if _dumps_str_keys is not None:
        try:
            return _dumps_str_keys(parts, option=_SORT_KEYS, default=_plain)  # type: ignore[no-any-return]
        except TypeError:  # a dict with other keys than strings (orjson.JSONEncodeError is a TypeError)
            pass
    return _dumps(parts)


def canonical_request(ctx: AttemptContext, namespace: str = "") -> dict[str, Any]:
    """The request of ``ctx`` as the plain, order-free structure its key is made of (its JSON, read back)."""
    return dict(zip(_FIELDS, json.loads(canonical_bytes(ctx, namespace)), strict=True))


def digest(request: bytes) -> str:
    """The key of a request given as :func:`canonical_bytes`."""
    return hashlib.sha256(request).hexdigest()


def cache_key(ctx: AttemptContext, namespace: str = "") -> str:
    """A hex digest of :func:`canonical_bytes` (SHA-256: collisions are not a practical concern)."""
    return digest(canonical_bytes(ctx, namespace))


def tag_namespace(base: str, tags: Mapping[str, str] | None, key_tags: Sequence[str]) -> str:
    """``base`` narrowed by the values of the tags named in ``key_tags`` (tenants never share entries)."""
    if not key_tags:
        return base
    # '|' separates the parts and is escaped inside them, so no two tenants' values join to the same namespace.
    tags = tags or {}
    values = [f"{name}={_escaped(str(tags.get(name, '')))}" for name in key_tags]
    return "|".join([_escaped(base), *values])


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|") if "|" in text or "\\" in text else text
