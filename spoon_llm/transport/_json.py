"""JSON for the hot path: orjson when it is installed, the standard library otherwise, with the same results.

``dumps`` returns compact UTF-8 bytes (what goes on the wire); ``loads`` takes bytes or text. Whatever orjson
refuses (non-string keys or integers beyond 64 bits when encoding; ``NaN`` literals, lone surrogates... when
decoding) is handed to the standard library, so the documents accepted and the error raised for a bad one
(``json.JSONDecodeError``, message included) are the standard library's: every transport reports the same thing.
One difference is left on purpose: orjson decodes an integer beyond 64 bits as a float where the standard library
keeps it exact. No LLM API sends such numbers (Google's JSON sends 64-bit integers as strings), and scanning every
body for them would cost more than decoding it.
"""

from __future__ import annotations

import json
from typing import Any

_orjson: Any
try:  # the fast path; the ``native`` extra installs it
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the core-only install
    _orjson = None

__all__ = ["HAVE_ORJSON", "JSONDecodeError", "dumps", "loads"]

#: Whether the fast encoder/decoder is in use.
HAVE_ORJSON = _orjson is not None
JSONDecodeError = json.JSONDecodeError


def _default(value: Any) -> Any:
    """Values JSON has no type for: pydantic models, sets, dates (the SDKs accept these in request bodies)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Built once: json.dumps with non-default arguments builds an encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON bytes; raises ``TypeError``/``ValueError`` for what JSON cannot express."""
    if _orjson is not None:
        try:
            encoded: bytes = _orjson.dumps(value, default=_default)
            return encoded
        except TypeError:  # orjson.JSONEncodeError: let the standard library decide (and word the error)
            pass
    return _ENCODER.encode(value).encode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """The decoded document; raises ``json.JSONDecodeError`` (a ``ValueError``) for a malformed one.

    A document nested deeper than the interpreter's recursion limit is malformed too (``JSONDecodeError``, never
    ``RecursionError``).
    """
    if _orjson is not None:
        try:
            return _orjson.loads(data)
        except ValueError:  # orjson.JSONDecodeError: the standard library decides, and words the error
            pass
    if isinstance(data, memoryview):
        data = data.tobytes()
    try:
        return json.loads(data)
    except RecursionError:
        # A hostile nesting depth: a malformed document like any other, not a crash of the caller.
        raise json.JSONDecodeError("nesting too deep", "", 0) from None


#: orjson's own ``loads`` when it is installed, else :func:`loads`: one Python call less per document on a hot
#: path. What it refuses with ``ValueError`` may still be a document the standard library accepts (``NaN``), so a
#: caller retries with :func:`loads` before treating the data as malformed.
first_loads: Any = _orjson.loads if _orjson is not None else loads
