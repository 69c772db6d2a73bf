"""Bedrock Runtime errors -> the spoon-llm error tree.

Bedrock names the error in the ``x-amzn-errortype`` header (``ThrottlingException:http://internal...``; the part
before the first ``:`` is the type), or in a JSON body's ``__type``, and explains it in the body's ``message``.
Inside an event stream an exception arrives as a frame with ``:message-type: exception`` and a lower-camel
``:exception-type`` (``throttlingException``); :func:`stream_exception` maps those the same way.

Types and what they mean for the manager (retry the same deployment, fall back, or fail):

=================================  ======  ==============================================================
type                               status  our error
=================================  ======  ==============================================================
ThrottlingException                429     RateLimitError (retried, Retry-After honoured)
ServiceQuotaExceededException      400     RateLimitError, not retryable (a quota: try the next candidate)
ModelNotReadyException             429     ServiceUnavailableError (retried: the model is being loaded)
ServiceUnavailableException        503     ServiceUnavailableError (retried)
InternalServerException            500     ProviderUnavailableError (retried)
ModelTimeoutException              408     TimeoutError (retried)
ModelErrorException / ModelStream  424     ProviderUnavailableError, not retryable (falls back)
ValidationException                400     InvalidRequestError; TokenLimitError when the input is too long
AccessDeniedException              403     PermissionDeniedError
UnrecognizedClient / signature     403     AuthenticationError
ResourceNotFoundException          404     ModelNotFoundError
=================================  ======  ==============================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..._headers import parse_retry_after, rate_limit_headers
from ...errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    ServiceUnavailableError,
    TimeoutError,
    TokenLimitError,
    error_for_status,
)
from .._transport import error_body

__all__ = ["error_from_response", "error_type_of", "stream_exception"]

PROVIDER = "bedrock"

# type -> (class, retryable override or None for the class default, status the type implies)
_BY_TYPE: dict[str, tuple[type[ProviderError], bool | None, int]] = {
    "ThrottlingException": (RateLimitError, None, 429),
    "ServiceQuotaExceededException": (RateLimitError, False, 400),
    "ModelNotReadyException": (ServiceUnavailableError, None, 429),
    "ServiceUnavailableException": (ServiceUnavailableError, None, 503),
    "InternalServerException": (ProviderUnavailableError, None, 500),
    "ModelTimeoutException": (TimeoutError, None, 408),
    "ModelErrorException": (ProviderUnavailableError, False, 424),
    "ModelStreamErrorException": (ProviderUnavailableError, False, 424),
    "ValidationException": (InvalidRequestError, None, 400),
    "AccessDeniedException": (PermissionDeniedError, None, 403),
    "UnrecognizedClientException": (AuthenticationError, None, 403),
    "InvalidSignatureException": (AuthenticationError, None, 403),
    "IncompleteSignatureException": (AuthenticationError, None, 403),
    "ExpiredTokenException": (AuthenticationError, None, 403),
    "ResourceNotFoundException": (ModelNotFoundError, None, 404),
}
# Bedrock reports context overflows as ValidationException: only the message tells them apart.
_OVERFLOW_MARKERS = ("input is too long", "too many input tokens", "prompt is too long", "context window",
                     "maximum context length", "too many total text bytes")


def error_type_of(headers: Mapping[str, str] | None, body: Any) -> str | None:
    """The error type: the ``x-amzn-errortype`` header up to its first ``:``, else the body's ``__type``."""
    header = headers.get("x-amzn-errortype") if headers is not None else None
    if header:
        return header.split(":", 1)[0] or None
    if isinstance(body, Mapping):
        raw = body.get("__type")
        if isinstance(raw, str) and raw:
            return raw.rsplit("#", 1)[-1].split(":", 1)[0]
    return None


def _message(body: Any, status: int | None) -> str:
    if isinstance(body, Mapping):
        for key in ("message", "Message"):
            if isinstance(body.get(key), str):
                return str(body[key])
    if isinstance(body, str) and body:
        return body
    return f"HTTP {status} from Bedrock"


def _build(status: int | None, error_type: str | None, message: str, body: Any, headers: Mapping[str, str] | None,
           model: str | None) -> ProviderError:
    known = _BY_TYPE.get(error_type or "")
    retryable: bool | None = None
    if known is not None:
        cls, retryable, _ = known
    else:
        cls = error_for_status(status)
    if issubclass(cls, InvalidRequestError) and any(m in message.lower() for m in _OVERFLOW_MARKERS):
        cls = TokenLimitError
    return cls(
        message,
        provider=PROVIDER,
        model=model,
        status_code=status,
        request_id=headers.get("x-amzn-requestid") if headers is not None else None,
        retry_after=parse_retry_after(headers),
        error_type=error_type,
        retryable=retryable,
        body=body,
        headers=rate_limit_headers(headers),
    )


def error_from_response(status: int, content: bytes, headers: Mapping[str, str], *,
                        model: str | None) -> ProviderError:
    """Our error for a non-2xx Bedrock answer (body decoded as JSON when it is JSON, else kept as text)."""
    body = error_body(content)
    return _build(status, error_type_of(headers, body), _message(body, status), body, headers, model)


def stream_exception(exception_type: str | None, payload: bytes, *, model: str | None) -> ProviderError:
    """Our error for an exception frame inside a 200 event stream (``throttlingException`` and the like).

    The stream itself was a 200, so the status reported is the one the type implies (None when unknown).
    """
    name = exception_type or ""
    name = name[:1].upper() + name[1:]
    body: Any = payload.decode("utf-8", errors="replace")
    try:
        body = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to decode, kept as text
        pass
    known = _BY_TYPE.get(name)
    status = known[2] if known is not None else None
    return _build(status, name or None, _message(body, status), body, None, model)
