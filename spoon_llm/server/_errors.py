"""Errors as each API family spells them: the status, the JSON body and the headers of a failed request.

Every failure a route meets is an :class:`~spoon_llm.errors.LLMError` (ours, or one raised by the gateway as
:class:`GatewayError`); :func:`classify` turns it into a :class:`Failure` once, and the OpenAI and Anthropic
fronts render that in their own shape. Upstream failures keep their meaning for the client: a provider's 429
stays a 429 with its Retry-After, a provider's 400 a 400 with its (scrubbed) message, while what the client
cannot fix (the gateway's own provider key refused, a 5xx, a network error) becomes 502, 503 or 504.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from ..errors import (
    AllProvidersFailedError,
    AuthenticationError,
    BudgetExceededError,
    ConfigurationError,
    ContentFilterError,
    InvalidRequestError,
    LLMError,
    ModelNotFoundError,
    NetworkError,
    ProviderUnavailableError,
    RateLimitError,
    ServiceUnavailableError,
    StateStoreError,
    TimeoutError,
    TokenLimitError,
    ValidationError,
    redact_secrets,
)

__all__ = ["Failure", "GatewayError", "anthropic_body", "classify", "openai_body"]


class GatewayError(LLMError):
    """A request the gateway itself refuses: bad body, unknown route or model, too large, saturated.

    ``status`` is the HTTP status; ``code`` a short machine-readable reason (``model_not_found``,
    ``request_too_large``, ``server_busy``...); ``retry_after`` (seconds) becomes a Retry-After header.
    """

    def __init__(self, status: int, message: str, *, code: str | None = None, retry_after: float | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.param = param


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed request, ready to render: status, message, a code, Retry-After and whether it came upstream."""

    status: int
    message: str
    code: str | None = None
    retry_after: float | None = None
    param: str | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Extra response headers (Retry-After, in whole seconds, rounded up)."""
        if self.retry_after is None:
            return []
        return [(b"retry-after", str(max(0, math.ceil(self.retry_after))).encode())]


def _upstream_status(exc: LLMError) -> tuple[int, str]:
    """Status and code for a provider error, as the client of a gateway should see it."""
    if isinstance(exc, RateLimitError):
        return 429, "rate_limit_exceeded"
    if isinstance(exc, TokenLimitError):
        return 400, "context_length_exceeded"
    if isinstance(exc, ContentFilterError):
        return 400, "content_filter"
    if isinstance(exc, InvalidRequestError):
        return 400, "invalid_request"
    if isinstance(exc, ModelNotFoundError):
        return 404, "model_not_found"
    if isinstance(exc, AuthenticationError):
        # The gateway's own provider key was refused: nothing the client can fix with its key.
        return 502, "upstream_authentication_failed"
    if isinstance(exc, ServiceUnavailableError):
        return 503, "upstream_unavailable"
    if isinstance(exc, ProviderUnavailableError) and exc.status_code is None:
        return 503, "no_deployment_available"  # every candidate's circuit is open or it is out of rotation
    if isinstance(exc, TimeoutError):
        return 504, "upstream_timeout"
    if isinstance(exc, NetworkError):
        return 502, "upstream_unreachable"
    return 502, "upstream_error"


def classify(exc: LLMError) -> Failure:
    """The status, message, code and Retry-After the client gets for ``exc``."""
    message = redact_secrets(exc.message)
    if isinstance(exc, GatewayError):
        return Failure(exc.status, message, exc.code, exc.retry_after, exc.param)
    status = getattr(exc, "status", None)
    if isinstance(status, int) and 400 <= status < 600:  # errors of the key guard carry their own status
        return Failure(status, message, getattr(exc, "code", None), getattr(exc, "retry_after", None))
    if isinstance(exc, ValidationError):
        return Failure(400, message, "invalid_request")
    if isinstance(exc, BudgetExceededError):
        return Failure(402, message, "budget_exceeded")
    if isinstance(exc, ConfigurationError):
        return Failure(500, message, "server_configuration")
    if isinstance(exc, StateStoreError):  # a shared store refused in fail_mode closed: try again shortly
        return Failure(503, message, "state_store_unavailable", 1.0)
    deciding = exc
    if isinstance(exc, AllProvidersFailedError) and exc.errors:
        deciding = exc.errors[-1]
    status, code = _upstream_status(deciding)
    retry_after = getattr(deciding, "retry_after", None) if status in (429, 503) else None
    return Failure(status, message, code, retry_after)


_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota",
                 403: "permission_error", 404: "invalid_request_error", 413: "invalid_request_error",
                 429: "rate_limit_error"}
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error",
                    504: "timeout_error"}


def openai_body(failure: Failure) -> bytes:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    kind = _OPENAI_TYPES.get(failure.status, "api_error")
    return orjson.dumps({"error": {"message": failure.message, "type": kind, "param": failure.param,
                                   "code": failure.code}})


def anthropic_body(failure: Failure) -> bytes:
    """Anthropic's error body: ``{"type": "error", "error": {"type", "message"}}``."""
    kind = _ANTHROPIC_TYPES.get(failure.status, "api_error")
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": failure.message}})
