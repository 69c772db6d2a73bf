"""Anthropic error mapping: error bodies and SDK exceptions -> the spoon-llm error tree.

:func:`error_from_body` is pure (status + decoded body + headers), shared by every transport and by the
in-band ``event: error`` of a stream; :func:`status_error` builds it from a raw non-2xx answer exactly as the SDK
path does (the native transport's entry point). :class:`ErrorMapper` translates the SDK's exceptions; its
``scope`` wraps every SDK call and re-raises what escapes as our errors, ``from`` the original.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..._headers import parse_retry_after, rate_limit_headers
from ...errors import (
    LLMError,
    NetworkError,
    ProviderError,
    ResponseParsingError,
    TimeoutError,
    TokenLimitError,
    error_for_status,
)
from .._transport import error_body

__all__ = ["ErrorMapper", "error_from_body", "is_context_overflow", "status_error"]

PROVIDER = "anthropic"

# The status each of the API's ``error.type`` values comes with (an in-band stream error carries none).
_BY_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
# Anthropic gives context overflows no code of their own: the message is all there is.
_OVERFLOW_MARKERS = ("prompt is too long", "exceed context limit", "context window", "too many tokens",
                     "maximum context length")


def is_context_overflow(message: str | None) -> bool:
    """True when an ``invalid_request_error`` message says the prompt does not fit the context window."""
    if not message:
        return False
    lowered = message.lower()
    return any(marker in lowered for marker in _OVERFLOW_MARKERS)


def error_from_body(
    status: int | None,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    model: str | None = None,
    request_id: str | None = None,
) -> ProviderError:
    """Our error for an Anthropic error response, or for an in-band stream ``error`` event (``status=None``)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    error_type = message = None
    if isinstance(error, Mapping):
        error_type = error.get("type")
        message = error.get("message")
    if message is None:
        message = body if isinstance(body, str) and body else f"HTTP {status} from Anthropic"
    # An in-band stream error has no HTTP status of its own (the stream was a 200): the type implies one.
    implied = status
    if implied is None and isinstance(error_type, str) and error_type in _BY_TYPE:
        implied = _BY_TYPE[error_type]
    overflow = error_type == "request_too_large" or (implied in (400, 413) and is_context_overflow(str(message)))
    cls = TokenLimitError if overflow else error_for_status(implied)
    if request_id is None:
        if isinstance(body, Mapping) and isinstance(body.get("request_id"), str):
            request_id = body["request_id"]
        elif headers is not None:
            request_id = headers.get("request-id")
    return cls(
        str(message),
        provider=PROVIDER,
        model=model,
        status_code=status,
        request_id=request_id,
        retry_after=parse_retry_after(headers),
        error_type=error_type,
        body=body,
        headers=rate_limit_headers(headers),
    )


def status_error(status: int, content: bytes, headers: Mapping[str, str], *, model: str | None) -> ProviderError:
    """Our error for a non-2xx answer read off the wire, equal to what the SDK path reports for it.

    Like ``anthropic``'s client: the stripped body text is decoded as JSON when it is JSON and kept as text
    otherwise, and the request id comes from the ``request-id`` header.
    """
    body = error_body(content)
    return error_from_body(status, body, headers, model=model, request_id=headers.get("request-id"))


class ErrorMapper:
    """Maps exceptions escaping an Anthropic SDK call (or a stream read) to our error tree.

    Built once per client with the SDK module; the provider's ``_sdk_errors`` scope applies :meth:`translate`.
    """

    def __init__(self, sdk: Any) -> None:
        import httpx2  # the SDK's HTTP library; imported with the SDK, off the import path of this module

        self._http_timeout: type[BaseException] = httpx2.TimeoutException
        self._http_decoding: type[BaseException] = httpx2.DecodingError
        # Every other failure of the HTTP exchange (after the SDK's own errors and decoding, checked first).
        self._http_failure: tuple[type[BaseException], ...] = (httpx2.HTTPError, httpx2.StreamError)
        self._status_error: type[BaseException] = sdk.APIStatusError
        self._timeout: type[BaseException] = sdk.APITimeoutError
        self._connection: type[BaseException] = sdk.APIConnectionError
        self._validation: type[BaseException] = sdk.APIResponseValidationError
        self._sdk_error: type[BaseException] = sdk.AnthropicError
        # The SDK builds its error-details schemas when it reports its first error (40-150 ms of CPU, on the event
        # loop): build them now, in the worker thread that builds the client.
        try:
            sdk.APIStatusError("warm-up", response=httpx2.Response(529, request=httpx2.Request(
                "POST", "http://warm-up.invalid/v1/messages")), body={"type": "error", "error": {
                    "type": "overloaded_error", "message": "", "details": {"error_code": "warm-up"}}})
        except Exception:  # noqa: BLE001 - another SDK version: its first error pays instead
            pass

    def translate(self, exc: BaseException, model: str | None) -> LLMError | None:
        """Our error for ``exc``, or None when it is not a transport/API failure (it then propagates as is)."""
        if isinstance(exc, LLMError):
            return None
        if isinstance(exc, self._status_error):
            response = exc.response  # type: ignore[attr-defined]
            return error_from_body(exc.status_code, exc.body, response.headers,  # type: ignore[attr-defined]
                                   model=model, request_id=exc.request_id)  # type: ignore[attr-defined]
        if isinstance(exc, (self._timeout, self._http_timeout)):
            return TimeoutError(f"request timed out: {exc}", provider=PROVIDER, model=model)
        if isinstance(exc, self._validation):
            return ResponseParsingError(f"the response did not match the expected schema: {exc}",
                                        provider=PROVIDER, model=model)
        if isinstance(exc, self._http_decoding):  # a body that does not match its content-encoding
            return ResponseParsingError(f"the response could not be decoded: {exc}", provider=PROVIDER, model=model)
        if isinstance(exc, (self._connection, *self._http_failure)):
            cause = exc.__cause__ or exc
            return NetworkError(f"connection failed: {type(cause).__name__}: {cause}", provider=PROVIDER,
                                model=model)
        if isinstance(exc, json.JSONDecodeError):
            return ResponseParsingError(f"the response is not valid JSON: {exc}", provider=PROVIDER, model=model)
        if isinstance(exc, self._sdk_error):
            return ProviderError(str(exc), provider=PROVIDER, model=model)
        return None

