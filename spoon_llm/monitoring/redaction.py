"""The redaction rules: what monitoring must never store or log, in one place.

* anything shaped like an API key or bearer token, and every key the configuration loaded
  (:func:`spoon_llm.errors.redact_secrets`, which knows the keys registered with ``register_secret``);
* credential headers (``Authorization``, ``x-api-key``, ``x-goog-api-key``, ...), whatever their value;
* any mapping field named like a secret (``api_key``, ``secret``, ``password``, ``access_token``,
  ``authorization``, ...; token *counts* such as ``max_tokens`` are not secrets), plus extra field names
  configured per :class:`Redactor`.

Bodies (prompts, answers) are a separate decision: :func:`truncate` bounds them once a caller chose to keep them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from ..errors import LLMError, redact_secrets

__all__ = ["MASK", "SECRET_HEADERS", "Redactor", "is_secret_field", "redact", "truncate"]

MASK = "***"

#: Header names (lower case) whose values are credentials, whatever they look like.
SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie", "set-cookie",
})

# Field names that hold credentials. "token" only as a whole last word: "max_tokens" is a count, not a secret.
_SECRET_FIELD = re.compile(
    r"api[_-]?key|apikey|secret|passw(?:or)?d|authori[sz]ation|credential|private[_-]?key|session[_-]?key"
    r"|(?:^|[_\-])token$|(?<=[a-z])Token$",  # access_token, x-auth-token, accessToken; not max_tokens
    re.IGNORECASE,
)

_MAX_DEPTH = 12


def is_secret_field(name: str, extra: frozenset[str] = frozenset()) -> bool:
    """Whether a mapping field of this name holds a credential."""
    lowered = name.lower()
    return lowered in SECRET_HEADERS or lowered in extra or _SECRET_FIELD.search(name) is not None


def truncate(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters, saying how much was dropped (``None``: no limit)."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more chars]"


class Redactor:
    """Applies the rules above to any value: strings, mappings, sequences, pydantic models, errors.

    ``extra_fields`` adds field names (case-insensitive) to mask, e.g. ``{"x-my-gateway-key"}``. The result is
    made of plain JSON-like values, safe to store, log or export.
    """

    def __init__(self, extra_fields: Iterable[str] = ()) -> None:
        self.extra_fields = frozenset(name.lower() for name in extra_fields)

    def add_fields(self, *names: str) -> None:
        """Mask these field names from now on."""
        self.extra_fields = self.extra_fields | {name.lower() for name in names}

    def text(self, value: str) -> str:
        """A string with keys and bearer tokens masked."""
        return redact_secrets(value)

    def error(self, error: BaseException) -> str:
        """``ErrorType: message`` with secrets masked (LLMError messages are already scrubbed; others may not be)."""
        message = str(error) if isinstance(error, LLMError) else redact_secrets(str(error))
        return redact_secrets(f"{type(error).__name__}: {message}")

    def __call__(self, value: Any, *, limit: int | None = None) -> Any:
        """Redact ``value`` (recursively); strings longer than ``limit`` characters are truncated."""
        return self._redact(value, limit, 0)

    def _redact(self, value: Any, limit: int | None, depth: int) -> Any:
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            return truncate(redact_secrets(value), limit)
        if isinstance(value, (SecretStr, SecretBytes)):
            return MASK
        if depth >= _MAX_DEPTH:
            return "..."
        if isinstance(value, Mapping):
            return {str(k): (MASK if self._secret(k) else self._redact(v, limit, depth + 1)) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self._redact(v, limit, depth + 1) for v in value]
        if isinstance(value, BaseException):
            return truncate(self.error(value), limit)
        if isinstance(value, BaseModel):
            return self._redact(value.model_dump(mode="json", exclude_none=True), limit, depth + 1)
        if isinstance(value, (bytes, bytearray)):
            return truncate(redact_secrets(bytes(value).decode("utf-8", "replace")), limit)
        return truncate(redact_secrets(repr(value)), limit)

    def _secret(self, key: object) -> bool:
        return isinstance(key, str) and is_secret_field(key, self.extra_fields)

    def __repr__(self) -> str:
        return f"Redactor(extra_fields={sorted(self.extra_fields)!r})"


_default = Redactor()


def redact(value: Any, *, limit: int | None = None) -> Any:
    """Redact ``value`` with the default rules (no extra field names)."""
    return _default(value, limit=limit)
