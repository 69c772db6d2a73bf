"""JSON encoding for the simulator: orjson when importable, the stdlib otherwise.

The simulator's per-request cost is dominated by JSON work, so the faster codec is used when it
happens to be installed; both produce compact UTF-8 JSON.
"""

from __future__ import annotations

import json
from typing import Any

_orjson: Any  # the module, or None
try:  # orjson is optional: never a dependency of spoon-llm[testing].
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

JSONDecodeError = ValueError  # json.JSONDecodeError and orjson.JSONDecodeError are both ValueErrors


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` to compact UTF-8 JSON bytes."""
    if _orjson is not None:
        data: bytes = _orjson.dumps(obj)
        return data
    return _encoder.encode(obj).encode()


def dumps_str(obj: Any) -> str:
    """Serialize ``obj`` to a compact JSON string (for payloads embedded in SSE frames)."""
    if _orjson is not None:
        text: str = _orjson.dumps(obj).decode()
        return text
    return _encoder.encode(obj)


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes or text; raises ``ValueError`` on malformed input."""
    if _orjson is not None:
        return _orjson.loads(data)
    return json.loads(data)
