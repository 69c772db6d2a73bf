"""Error mapping for OpenAI-compatible APIs: error bodies, SDK exceptions and transport failures -> our tree.

:func:`error_from_body` is pure (status + decoded body + headers -> a :class:`ProviderError`) and is what every
transport uses; :func:`status_error` builds it from a raw non-2xx answer exactly as the SDK path does (the native
transport's entry point: its client maps its own connection failures); :func:`map_exception` translates the
``openai`` SDK's typed exceptions and ``httpx2`` transport errors by type, never by message text;
the transports apply it through the shared :class:`~spoon_llm.providers._transport.ErrorScope`.
The SDK is imported lazily so that the pure half works without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..._headers import parse_retry_after, rate_limit_headers
from ...errors import (
    ContentFilterError,
    NetworkError,
    ProviderError,
    ProviderUnavailableError,
    ResponseParsingError,
    TimeoutError,
    error_for_status,
    redact_secrets,
)
from .._transport import error_body

__all__ = ["error_from_body", "map_exception", "status_error"]

#: ``error.code`` values meaning the prompt does not fit the context window.
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length", "max_tokens_exceeded"})
#: ``error.code`` values meaning the provider's content policy refused the request.
_FILTER_CODES = frozenset({"content_filter", "content_policy_violation", "moderation_blocked", "invalid_prompt",
                           "ResponsibleAIPolicyViolation"})
#: Compatible servers (vLLM, DeepSeek, OpenRouter upstreams) send no code for an overflow, only this wording.
_CONTEXT_WORDING = re.compile(r"maximum context length|context (?:length|window) (?:is )?exceeded|"
                              r"prompt is too long|too many tokens", re.IGNORECASE)


#: How deep an error body is copied: no vendor nests an error this deep, and a hostile body must not exhaust the stack.
_MAX_DEPTH = 64


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, (dict, list)) and depth >= _MAX_DEPTH:
        return "..."  # dropped rather than kept unscrubbed
    if isinstance(value, dict):
        return {k: _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, depth + 1) for v in value]
    return value


def error_from_body(
    status: int | None,
    body: Any,
    *,
    provider: str,
    model: str | None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    message: str | None = None,
) -> ProviderError:
    """The error for an HTTP status and a decoded error body (``{"error": {...}}``, the inner object, or text).

    The class comes from the status, refined by ``error.code``: ``context_length_exceeded`` ->
    :class:`TokenLimitError`, content-policy codes -> :class:`ContentFilterError`; OpenAI's
    ``insufficient_quota`` 429 is not retryable; an ``x-should-retry`` header overrides retryability.
    """
    error = body.get("error", body) if isinstance(body, Mapping) else body
    vendor_message = error_type = code = None
    metadata: Any = None
    if isinstance(error, Mapping):
        vendor_message = error.get("message")
        error_type = error.get("type")
        raw_code = error.get("code")
        code = str(raw_code) if raw_code is not None else None
        metadata = error.get("metadata")
    elif isinstance(error, str) and error:
        vendor_message = error
    text = vendor_message if isinstance(vendor_message, str) and vendor_message else (message or "")
    if not text:
        text = f"HTTP {status}" if status else "the provider reported an error"
    overflow = code in _CONTEXT_CODES or (
        code is None and status in (400, 413, 422) and bool(_CONTEXT_WORDING.search(text))
    )
    if code in _FILTER_CODES or (
        status == 403 and isinstance(metadata, Mapping) and ("reasons" in metadata or "flagged_input" in metadata)
    ):
        cls: type[ProviderError] = ContentFilterError
    elif status is None:
        cls = ProviderUnavailableError if (error_type == "server_error" or code == "server_error") else ProviderError
    else:
        cls = error_for_status(status, context_overflow=overflow)
    retryable: bool | None = None
    if code == "insufficient_quota":
        retryable = False  # billing, not load: waiting will not help
    should_retry = headers.get("x-should-retry") if headers is not None else None
    if should_retry == "true":
        retryable = True
    elif should_retry == "false":
        retryable = False
    if request_id is None and headers is not None:
        request_id = headers.get("x-request-id")
    return cls(
        text,
        provider=provider,
        model=model,
        status_code=status,
        request_id=request_id,
        retry_after=parse_retry_after(headers) if headers is not None else None,
        error_type=error_type if isinstance(error_type, str) else None,
        error_code=code,
        retryable=retryable,
        body=_scrub(body),
        headers=rate_limit_headers(headers),
    )


def status_error(
    status: int,
    content: bytes,
    headers: Mapping[str, str],
    *,
    provider: str,
    model: str | None,
) -> ProviderError:
    """Our error for a non-2xx answer read off the wire, equal to what the SDK path reports for it.

    The ``openai`` SDK decodes the stripped body text as JSON (else keeps the text), keeps ``error`` (or the whole
    object) as the error body and words its message ``Error code: N - <vendor message>``; the same steps here
    give the same class, message, body, request id, Retry-After and rate-limit headers on every transport.
    """
    body = error_body(content)
    sdk_message = f"Error code: {status}"
    inner = body.get("error", body) if isinstance(body, Mapping) else None
    vendor = inner.get("message") if isinstance(inner, Mapping) else None
    if isinstance(vendor, str) and vendor:
        sdk_message += f" - {vendor}"
    data = body.get("error", body) if isinstance(body, Mapping) else body
    return error_from_body(status, data, provider=provider, model=model, headers=headers,
                           request_id=headers.get("x-request-id"), message=sdk_message)


def map_exception(exc: BaseException, *, provider: str, model: str | None) -> ProviderError | None:
    """Our error for an ``openai`` SDK exception or an ``httpx2`` transport failure; ``None`` for anything else."""
    import httpx2
    import openai

    if isinstance(exc, openai.APIStatusError):
        response = exc.response
        return error_from_body(exc.status_code, exc.body, provider=provider, model=model, headers=response.headers,
                               request_id=exc.request_id, message=exc.message)
    if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException)):
        return TimeoutError(f"request to {provider} timed out", provider=provider, model=model)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        return NetworkError(f"connection to {provider} failed{detail}", provider=provider, model=model)
    if isinstance(exc, httpx2.DecodingError):  # a body that does not match its content-encoding
        return ResponseParsingError(f"the answer could not be decoded: {exc}", provider=provider, model=model)
    if isinstance(exc, (httpx2.HTTPError, httpx2.StreamError)):  # every other failure of the HTTP exchange
        return NetworkError(f"connection to {provider} failed: {type(exc).__name__}: {exc}", provider=provider,
                            model=model)
    if isinstance(exc, openai.APIResponseValidationError):
        return ResponseParsingError(f"could not decode the answer: {exc.message}", provider=provider, model=model,
                                    status_code=exc.status_code)
    if isinstance(exc, openai.APIError):
        return error_from_body(None, exc.body, provider=provider, model=model, message=exc.message)
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return ResponseParsingError(f"the answer is not valid JSON: {exc}", provider=provider, model=model)
    return None
