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

__all__ = ["cache_key", "canonical_request"]

#: Call settings that never change the answer (how long to wait, how to label it, how to cache it).
IGNORED_KWARGS = frozenset({"timeout", "tags", "cache", "cache_namespace", "callbacks", "request_id", "stream"})
#: Operations whose answers are cached, and the kind they are stored under (a stream replays a chat answer).
CACHEABLE = {"chat": "chat", "chat_stream": "chat", "chat_with_tools": "chat", "completion": "completion",
             "embed": "embed"}

try:  # orjson sorts keys in C; the standard library is the fallback of the core install
    import orjson

    def _dumps(value: Any) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=_plain)
except ImportError:  # pragma: no cover - exercised by the core-only install check
    def _dumps(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, default=_plain, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    """JSON for what is not JSON already: pydantic models and model classes, sets, anything else by repr."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True, exclude_defaults=True)
    schema = getattr(value, "model_json_schema", None)
    if callable(schema):  # a pydantic model class given as response_format
        return {"schema": schema(), "name": getattr(value, "__name__", "")}
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    return repr(value)


def _message(message: Any) -> Any:
    # The common case, a plain {"role", "content": str} dict, is already what a Message dumps to.
    if type(message) is dict and len(message) == 2 and type(message.get("content")) is str and "role" in message:
        return message
    from ..types import Message

    if not isinstance(message, Message):
        message = Message.model_validate(message)
    return message.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def canonical_request(ctx: AttemptContext, namespace: str = "") -> dict[str, Any]:
    """The request of ``ctx`` as the plain, order-free structure its key is made of."""
    raw = ctx.raw_messages
    messages: Any
    if raw is None:
        messages = None
    elif isinstance(raw, str):
        messages = [{"role": "user", "content": raw}]
    elif isinstance(raw, Sequence):
        messages = [_message(m) for m in raw]
    else:
        messages = [_message(raw)]
    kwargs = ctx.kwargs
    settings = {k: v for k, v in kwargs.items() if k not in IGNORED_KWARGS and v is not None} if kwargs else {}
    if ctx.tools is not None:
        settings["tools"] = ctx.tools
    deployment = ctx.deployment
    return {
        "ns": namespace,
        "op": CACHEABLE.get(ctx.operation, ctx.operation),
        "provider": deployment.provider_name,
        "model": ctx.model or deployment.model,
        "messages": messages,
        "input": ctx.subject if ctx.operation in ("embed", "completion") else None,
        "settings": settings,
    }


def cache_key(ctx: AttemptContext, namespace: str = "") -> str:
    """A hex digest of :func:`canonical_request` (SHA-256: collisions are not a practical concern)."""
    return hashlib.sha256(_dumps(canonical_request(ctx, namespace))).hexdigest()


def tag_namespace(base: str, tags: Mapping[str, str] | None, key_tags: Sequence[str]) -> str:
    """``base`` narrowed by the values of the tags named in ``key_tags`` (tenants never share entries)."""
    if not key_tags:
        return base
    values = [f"{name}={(tags or {}).get(name, '')}" for name in key_tags]
    return "|".join([base, *values])
