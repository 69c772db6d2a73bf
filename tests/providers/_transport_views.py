"""What the transport tests compare between ``sdk`` and ``native``: results, errors and recorded requests."""

from __future__ import annotations

from typing import Any

from spoon_llm.errors import ProviderError
from spoon_llm.testing._records import RecordedRequest

#: Per-request by nature: never compared.
VOLATILE_FIELDS = frozenset({"request_id", "duration", "timestamp"})
#: Headers that name the client or the connection rather than the request.
CLIENT_HEADERS = frozenset({"user-agent", "x-goog-api-client", "host", "content-length", "connection"})
SYNTHETIC_ID = "gemini-call-"


def stable(value: Any) -> Any:
    """``value`` (a ``model_dump()``) without the fields that differ per request."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE_FIELDS}
    if isinstance(value, list):
        return [stable(v) for v in value]
    if isinstance(value, str) and value.startswith(SYNTHETIC_ID):
        return SYNTHETIC_ID + "*"  # made up per call (uuid) for function calls Gemini sent without an id
    return value


def error_view(error: BaseException) -> dict[str, Any]:
    """Everything an error tells the caller, for comparison."""
    view: dict[str, Any] = {"class": type(error).__name__, "message": getattr(error, "message", str(error))}
    if isinstance(error, ProviderError):
        view.update(provider=error.provider, model=error.model, status_code=error.status_code,
                    error_type=error.error_type, error_code=error.error_code, retryable=error.retryable,
                    retry_after=error.retry_after, body=error.body,
                    headers={k: v for k, v in error.headers.items() if "request-id" not in k})
        for extra in ("partial_content", "partial_usage"):
            if hasattr(error, extra):
                value = getattr(error, extra)
                view[extra] = value.model_dump() if hasattr(value, "model_dump") else value
    return stable(view)


def request_view(record: RecordedRequest) -> dict[str, Any]:
    """What the simulator received, minus the headers that name the client (and the SDKs' telemetry)."""
    headers = {k: v for k, v in record.headers.items()
               if k not in CLIENT_HEADERS and not k.startswith("x-stainless-")}
    return {"method": record.method, "path": record.path, "query": record.query, "body": record.body,
            "headers": headers}
