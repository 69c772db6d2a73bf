"""Gemini error mapping: Google API error bodies and ``google-genai`` exceptions -> the spoon-llm error tree.

:func:`error_from_body` is pure (HTTP status + decoded ``{"error": {code, status, message, details}}`` +
headers) and shared by every transport. :func:`status_error` and :func:`in_band_error` build it from what the
native transport read exactly as the SDK path does (google-genai's ``APIError`` then :class:`ErrorMapper`).
:class:`ErrorMapper` translates the SDK's exceptions; its ``scope`` wraps every SDK call and stream read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..._headers import parse_retry_after, rate_limit_headers
from ...errors import (
    AuthenticationError,
    LLMError,
    NetworkError,
    PermissionDeniedError,
    ProviderError,
    ResponseParsingError,
    TimeoutError,
    error_for_status,
)

__all__ = ["ErrorMapper", "error_from_body", "in_band_error", "is_context_overflow", "status_error"]

PROVIDER = "gemini"

# google.rpc status names -> the HTTP status they travel with (for bodies that carry only the name).
_STATUS_CODES = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500, "UNKNOWN": 500, "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "ACCESS_TOKEN_EXPIRED", "CREDENTIALS_MISSING"})
# INVALID_ARGUMENT is also the status of context overflows: only the message tells them apart.
_OVERFLOW_MARKERS = ("exceeds the maximum number of tokens", "input token count", "too many tokens",
                     "context window", "context length", "exceeds the maximum context")


def is_context_overflow(message: str | None) -> bool:
    """True when an ``INVALID_ARGUMENT`` message says the prompt does not fit the context window."""
    if not message:
        return False
    lowered = message.lower()
    return any(marker in lowered for marker in _OVERFLOW_MARKERS)


def _details(error: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    details = error.get("details")
    return [d for d in details if isinstance(d, Mapping)] if isinstance(details, list) else []


def _retry_delay(error: Mapping[str, Any]) -> float | None:
    for detail in _details(error):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None


def error_from_body(
    status: int | None,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    model: str | None = None,
    provider: str = PROVIDER,
) -> ProviderError:
    """Our error for a Gemini (or Vertex AI) error response (``body`` decoded; a one-item list is unwrapped)."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        error = body if isinstance(body, Mapping) and "message" in body else {}
    message = error.get("message") or (body if isinstance(body, str) and body else f"HTTP {status} from Gemini")
    error_status = error.get("status")
    code = error.get("code")
    if status is None:
        status = code if isinstance(code, int) else _STATUS_CODES.get(str(error_status))
    reasons = {str(d.get("reason")) for d in _details(error) if d.get("reason")}
    cls: type[ProviderError]
    if reasons & _AUTH_REASONS:
        # Gemini answers a bad key with 400 INVALID_ARGUMENT; its ErrorInfo reason says what it is.
        cls = AuthenticationError
    elif error_status == "PERMISSION_DENIED":
        cls = PermissionDeniedError
    elif error_status == "DEADLINE_EXCEEDED":
        cls = TimeoutError
    else:
        cls = error_for_status(status, context_overflow=status == 400 and is_context_overflow(str(message)))
    retry_after = parse_retry_after(headers)
    if retry_after is None:
        retry_after = _retry_delay(error)
    return cls(
        str(message),
        provider=provider,
        model=model,
        status_code=status,
        request_id=(headers or {}).get("x-request-id"),
        retry_after=retry_after,
        error_type=str(error_status) if error_status else None,
        error_code=str(code) if code is not None else None,
        body=body,
        headers=rate_limit_headers(headers),
    )


def _sdk_field(response_json: Any, name: str) -> Any:
    # google-genai's APIError._get_status/_get_message: the top-level field, else the one under "error".
    try:
        return response_json.get(name, response_json.get("error", {}).get(name, None))
    except AttributeError:
        return None


def _api_error(code: Any, response_json: Any, http_status: int, headers: Mapping[str, str],
               model: str | None, provider: str) -> ProviderError:
    """What the SDK path reports for google-genai's ``APIError(code, response_json)`` on a response."""
    if isinstance(response_json, list) and len(response_json) == 1:
        response_json = response_json[0]
    if not code:
        code = _sdk_field(response_json, "code")
    body = response_json
    if not isinstance(body, Mapping) or "error" not in body:
        status_name = _sdk_field(response_json, "status")
        message = _sdk_field(response_json, "message") or f"{code} {status_name}. {response_json}"
        body = {"error": {"code": code, "status": status_name, "message": message}}
    status = code or http_status
    return error_from_body(status if isinstance(status, int) else None, body, _plain_headers(headers), model=model,
                           provider=provider)


def status_error(status: int, content: bytes, headers: Mapping[str, str], reason: str, *,
                 model: str | None, provider: str = PROVIDER) -> ProviderError:
    """Our error for a non-200 answer read off the wire, equal to what the SDK path reports for it.

    google-genai decodes the body as JSON, or else keeps ``{"message": <text>, "status": <reason phrase>}``.
    """
    text = content.decode("utf-8", errors="replace")
    try:
        response_json: Any = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to decode, kept as text
        response_json = {"message": text, "status": reason}
    return _api_error(status, response_json, status, headers, model, provider)


def in_band_error(chunk: Mapping[str, Any], http_status: int, headers: Mapping[str, str], *,
                  model: str | None, provider: str = PROVIDER) -> ProviderError:
    """Our error for an ``{"error": ...}`` chunk inside a 200 stream (its ``code`` is the status)."""
    error = chunk.get("error")
    code = error.get("code") if isinstance(error, Mapping) else None
    return _api_error(code, chunk, http_status, headers, model, provider)


class ErrorMapper:
    """Maps exceptions escaping a ``google-genai`` call (or a stream read) to our error tree.

    Built once per client with the SDK's ``errors`` module; the provider's ``_sdk_errors`` scope applies it.
    """

    def __init__(self, sdk_errors: Any, provider: str = PROVIDER) -> None:
        import httpx2  # the SDK's HTTP library; imported with the SDK, off the import path of this module

        self._provider = provider
        self._http_timeout: type[BaseException] = httpx2.TimeoutException
        self._http_decoding: type[BaseException] = httpx2.DecodingError
        # Every other failure of the HTTP exchange (decoding is checked first).
        self._http_failure: tuple[type[BaseException], ...] = (httpx2.HTTPError, httpx2.StreamError)
        self._api_error: type[BaseException] = sdk_errors.APIError
        # google-genai's "Failed to parse response as JSON" for a complete chunk that is not JSON.
        self._not_json: type[BaseException] = getattr(sdk_errors, "UnknownApiResponseError", json.JSONDecodeError)

    def translate(self, exc: BaseException, model: str | None) -> LLMError | None:
        """Our error for ``exc``, or None when it is not a transport/API failure (it then propagates as is)."""
        if isinstance(exc, LLMError):
            return None
        if isinstance(exc, self._api_error):
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None)
            body = getattr(exc, "details", None)
            if not isinstance(body, Mapping) or "error" not in body:
                body = {"error": {"code": getattr(exc, "code", None), "status": getattr(exc, "status", None),
                                  "message": getattr(exc, "message", None) or str(exc)}}
            # ``code`` is the error's own status; an in-band stream error arrives on a 200 response.
            status = getattr(exc, "code", None) or getattr(response, "status_code", None)
            return error_from_body(status if isinstance(status, int) else None, body,
                                   _plain_headers(headers), model=model, provider=self._provider)
        provider = self._provider
        if isinstance(exc, self._http_timeout):
            return TimeoutError(f"request timed out: {exc!r}", provider=provider, model=model)
        if isinstance(exc, self._http_decoding):  # a body that does not match its content-encoding
            return ResponseParsingError(f"the response could not be decoded: {exc}", provider=provider, model=model)
        if isinstance(exc, self._http_failure):
            return NetworkError(f"connection failed: {type(exc).__name__}: {exc}", provider=provider, model=model)
        if isinstance(exc, (json.JSONDecodeError, self._not_json)):
            return ResponseParsingError(f"the response is not valid JSON: {exc}", provider=provider, model=model)
        if isinstance(exc, RecursionError):  # the SDK decoding a body nested deeper than Python can
            return ResponseParsingError(f"the response is not valid JSON: nesting too deep ({exc})",
                                        provider=provider, model=model)
        return None


def _plain_headers(headers: Any) -> dict[str, str] | None:
    if headers is None:
        return None
    try:
        return {str(k).lower(): str(v) for k, v in headers.items()}
    except AttributeError:
        return None

