"""One error tree for every provider; SDK and HTTP errors are mapped into it.

::

    LLMError
    ├── ConfigurationError
    ├── ValidationError                 bad arguments, caught before any request is sent
    ├── BudgetExceededError             refused before it reached the provider
    ├── StateStoreError                 the shared state store (Redis, SQLite) failed and fail_mode is "closed"
    ├── OutputValidationError           the answer did not validate against the requested response_format
    ├── ToolExecutionError              a tool run by ``run_tools=True`` raised and tool errors are set to "raise"
    ├── MaxTurnsExceededError           ``run_tools=True`` reached ``max_turns`` without a final answer
    └── ProviderError                   something went wrong talking to a provider
        ├── AuthenticationError         401 / 403 (PermissionDeniedError is its 403 subclass)
        │   └── PermissionDeniedError
        ├── InvalidRequestError         400 / 422: the request itself is wrong; retrying will not help
        │   ├── TokenLimitError         the prompt does not fit the model's context window
        │   └── ContentFilterError      refused by the provider's content policy
        ├── ModelNotFoundError          404 for the model
        ├── RateLimitError              429 (retryable, carries retry_after)
        ├── ProviderUnavailableError    5xx, 529 overloaded (retryable)
        │   └── ServiceUnavailableError 503 / 529
        ├── NetworkError                connection refused, reset, DNS (retryable)
        │   └── RequestTimeoutError     the request ran out of time (retryable; ``TimeoutError`` is its old name)
        ├── ResponseParsingError        the answer could not be decoded (wrong JSON, wrong types, bad UTF-8)
        │   └── ResponseTooLargeError   one streamed event, or the whole stream, is over its configured cap
        ├── StreamInterruptedError      a stream died after content reached the caller
        └── AllProvidersFailedError     every candidate of a request failed: an ExceptionGroup of each attempt's error

Every :class:`ProviderError` carries ``provider``, ``model``, ``status_code``, ``request_id``, ``retry_after``
and ``retryable``; ``str(error)`` reads ``[provider] message``. Messages are scrubbed of anything that looks like an
API key before they are stored, so no error, repr or traceback context can leak one.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

if sys.version_info < (3, 11):  # pragma: no cover - 3.10
    from exceptiongroup import ExceptionGroup

__all__ = [
    "DECODE_FAULTS",
    "AllProvidersFailedError",
    "AuthenticationError",
    "BudgetExceededError",
    "ConfigurationError",
    "ContentFilterError",
    "InvalidRequestError",
    "LLMError",
    "MaxTurnsExceededError",
    "ModelNotFoundError",
    "NetworkError",
    "OutputValidationError",
    "PermissionDeniedError",
    "ProviderError",
    "ProviderUnavailableError",
    "RateLimitError",
    "ResponseParsingError",
    "ResponseTooLargeError",
    "ServiceUnavailableError",
    "StateStoreError",
    "StreamInterruptedError",
    "RequestTimeoutError",
    "TimeoutError",
    "TokenLimitError",
    "ToolExecutionError",
    "ValidationError",
    "error_for_status",
    "excerpt",
    "malformed",
    "redact_secrets",
    "safe_cause",
    "register_secret",
]

# Key shapes of the vendors we speak to, plus bearer tokens; long enough not to eat ordinary words.
_SECRET_PATTERNS = re.compile(
    r"(sk-(?:proj-|ant-|or-v1-)?[A-Za-z0-9_\-]{8,}"
    r"|AIza[0-9A-Za-z_\-]{20,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{8,}"
    r"|(?i:(?:api[_-]?key|x-api-key|x-goog-api-key|key)=)[A-Za-z0-9._\-]{8,})"
)

_known_secrets: set[str] = set()
_known_tails: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact_secrets` removes it wherever it appears, whatever its shape.

    The first secret also makes the log records of the HTTP libraries and vendor SDKs we drive (their DEBUG
    output prints request options and echoed bodies) pass through :func:`redact_secrets`.
    """
    if value and len(value) >= 6:
        _known_secrets.add(value)
        tail = value[-8:]
        # Upstreams echo a masked key ("sk-...Ab12Cd34"): its tail is secret too, when it is random enough not
        # to match ordinary text.
        if len(value) >= 20 and len(set(tail)) >= 5:
            _known_tails.add(tail)
        if not _log_guard:
            _guard_library_logs()


# Loggers of the libraries that carry our requests; their records are scrubbed as they are created (so every
# handler, whoever installed it, sees the scrubbed text).
_LIBRARY_LOGGERS = ("httpx", "httpcore", "openai", "anthropic", "google_genai", "google.genai", "google.auth",
                    "aiohttp", "urllib3", "botocore", "hpack", "h2")
_log_guard: list[Any] = []


def _guard_library_logs() -> None:
    import logging

    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith(_LIBRARY_LOGGERS):
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed record is the handler's to report
                return record
            clean = redact_secrets(message)
            if clean != message:
                record.msg, record.args = clean, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact_secrets(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _log_guard.append(factory)


def redact_secrets(text: str) -> str:
    """Replace API keys and bearer tokens in ``text`` with ``***``.

    Whole registered secrets go first, then the key shapes, then the tails of registered keys (what an upstream
    leaves of a key it masks), so that a shorter match never breaks a longer one.
    """
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, "***")
    text = _SECRET_PATTERNS.sub(_mask_match, text)
    for tail in _known_tails:
        if tail in text:
            text = text.replace(tail, "***")
    return text


def _scrub(value: Any, depth: int = 0) -> Any:
    """``value`` (a decoded error body) with every string redacted; containers copied only when needed."""
    if isinstance(value, str):
        return redact_secrets(value)
    if depth > 20:
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, depth + 1) for v in value]
    return value


def safe_cause(exc: BaseException) -> BaseException | None:
    """What to chain as our error's ``__cause__``: ``exc`` scrubbed of secrets, or ``None`` when that fails.

    Use it as ``raise ours from safe_cause(exc)``. An SDK's or HTTP library's exception (and the exceptions
    chained to it) may hold the request (its ``Authorization`` header), a response whose body echoes the key, or
    a message quoting it, and ``traceback.format_exception`` prints messages along the whole chain. Every link
    loses its request and response, has its message, ``args`` and ``body`` redacted; if a key still shows in
    the formatted traceback the exception is not chained at all.
    """
    import traceback

    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        _defang(link)
        pending.extend(e for e in (link.__cause__, link.__context__) if e is not None)
    text = "".join(traceback.format_exception(exc))
    return exc if redact_secrets(text) == text else None


def _defang(link: BaseException) -> None:
    try:
        link.args = tuple(redact_secrets(a) if isinstance(a, str) else a for a in link.args)
    except Exception:  # noqa: BLE001 - an exception type that refuses new args keeps them; checked after
        pass
    state = getattr(link, "__dict__", {})
    for name in ("message", "body", "details"):
        if name in state:
            try:
                setattr(link, name, _scrub(state[name]))
            except Exception:  # noqa: BLE001
                pass
    for name in ("request", "response", "request_info", "_request"):
        if name in state:
            try:
                setattr(link, name, None)
            except Exception:  # noqa: BLE001
                pass


def _mask_match(match: re.Match[str]) -> str:
    token = match.group(0)
    if "=" in token:
        return token.split("=", 1)[0] + "=***"
    if token.lower().startswith("bearer"):
        return "Bearer ***"
    return "***"


class LLMError(Exception):
    """Base of every error spoon-llm raises.

    An error that ends a routed request carries its trace: ``attempts`` (each try, oldest first) and
    ``fallback_path`` (the deployments tried); both are empty when the error did not come from the manager.
    """

    retryable: bool = False
    #: The request's attempts (``spoon_llm.types.Attempt``), set when the manager gives up.
    attempts: Sequence[Any] = ()
    #: The deployments the request was tried on, in order.
    fallback_path: Sequence[str] = ()

    def __init__(self, message: str, *, provider: str | None = None, model: str | None = None) -> None:
        self._message = redact_secrets(str(message))
        self.provider = provider
        self.model = model
        super().__init__(self._message)

    @property
    def message(self) -> str:
        """The error's text, with anything that looks like a key masked."""
        return self._message

    def __str__(self) -> str:
        return f"[{self.provider}] {self.message}" if self.provider else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, model={self.model!r})"


class ConfigurationError(LLMError):
    """The configuration is invalid; the message names the source, the key and the fix."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        key: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.source = source
        self.key = key
        prefix = ": ".join(p for p in (source, key) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message, provider=provider)


class ValidationError(LLMError):
    """The caller's arguments are invalid; nothing was sent."""


class OutputValidationError(LLMError):
    """The model's answer did not validate against the requested ``response_format`` (after any re-asks).

    ``raw_text`` is the answer as received, ``errors`` pydantic's list of validation errors (or one entry saying
    the text is not JSON), ``response`` the :class:`~spoon_llm.types.LLMResponse` that failed (with the summed
    usage, cost and attempt trace of every try).
    """

    def __init__(self, message: str, *, raw_text: str = "", errors: Sequence[Any] = (), response: Any = None,
                 provider: str | None = None, model: str | None = None) -> None:
        super().__init__(message, provider=provider, model=model)
        self.raw_text = raw_text
        self.errors = list(errors)
        self.response = response


class ToolExecutionError(LLMError):
    """A tool run by ``run_tools=True`` raised and ``tool_errors="raise"`` asked for the loop to stop.

    ``tool_name`` and ``arguments`` say which call failed; the tool's exception is the ``__cause__``;
    ``messages`` holds the conversation up to the failing call.
    """

    def __init__(self, message: str, *, tool_name: str, arguments: Any = None, messages: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.tool_name = tool_name
        self.arguments = arguments
        self.messages = list(messages)


class MaxTurnsExceededError(LLMError):
    """``run_tools=True`` used up ``max_turns`` model calls and the model still asked for tools.

    ``messages`` is the whole conversation so far (tool results included), ``response`` the last answer,
    ``usage`` and ``cost`` the sums over every turn.
    """

    def __init__(self, message: str, *, messages: Sequence[Any] = (), response: Any = None, usage: Any = None,
                 cost: Any = None, max_turns: int = 0) -> None:
        super().__init__(message)
        self.messages = list(messages)
        self.response = response
        self.usage = usage
        self.cost = cost
        self.max_turns = max_turns


class BudgetExceededError(LLMError):
    """A spending budget is exhausted; the request was refused before it reached a provider."""

    def __init__(
        self,
        message: str,
        *,
        budget: str | None = None,
        limit: float | None = None,
        spent: float | None = None,
        provider: str | None = None,
        model: str | None = None,
        reserved: float | None = None,
        requested: float | None = None,
    ) -> None:
        self.budget = budget
        self.limit = limit
        #: Money spent in the budget's period; ``reserved``: held by requests in flight; ``requested``: what
        #: this request would have reserved (its worst case).
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        super().__init__(message, provider=provider, model=model)


class StateStoreError(LLMError):
    """The state store (Redis, SQLite) failed and ``[state] fail_mode = "closed"`` refuses to go on without it.

    ``store`` names the store (its URL without credentials, or its file); ``operation`` what was being done.
    """

    def __init__(self, message: str, *, store: str | None = None, operation: str | None = None,
                 provider: str | None = None, model: str | None = None) -> None:
        self.store = store
        self.operation = operation
        super().__init__(message, provider=provider, model=model)


class ProviderError(LLMError):
    """A provider call failed. Carries everything needed to decide what to do next."""

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        retryable: bool | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model)
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after = retry_after
        #: The vendor's own error type, e.g. ``invalid_request_error``, ``overloaded_error``, ``RESOURCE_EXHAUSTED``.
        self.error_type = error_type
        self.error_code = error_code
        self.retryable = self.default_retryable if retryable is None else retryable
        #: The decoded error body, as the provider sent it (keys scrubbed).
        self.body = _scrub(body) if body is not None else None
        #: Rate-limit and retry headers of the failing response (never auth headers).
        self.headers = headers or {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, model={self.model!r}, "
            f"status_code={self.status_code!r}, retry_after={self.retry_after!r}, request_id={self.request_id!r})"
        )


class AuthenticationError(ProviderError):
    """The API key was missing, wrong or revoked (401), or lacks permission (403)."""


class PermissionDeniedError(AuthenticationError):
    """The key is valid but may not use this model or endpoint (403)."""


class InvalidRequestError(ProviderError):
    """The provider rejected the request as malformed (400/422); sending it again will not help."""


class TokenLimitError(InvalidRequestError):
    """The prompt (plus requested output) exceeds the model's context window."""


class ContentFilterError(InvalidRequestError):
    """The provider refused the request or answer under its content policy."""


class ModelNotFoundError(ProviderError):
    """The model does not exist or this key cannot see it (404)."""


class RateLimitError(ProviderError):
    """Too many requests (429); ``retry_after`` says how long the provider asked us to wait, when it did."""

    default_retryable = True


class ProviderUnavailableError(ProviderError):
    """The provider failed on its side (5xx)."""

    default_retryable = True


class ServiceUnavailableError(ProviderUnavailableError):
    """The provider is overloaded or down for maintenance (503, Anthropic 529)."""


class NetworkError(ProviderError):
    """The connection failed: refused, reset or dropped."""

    default_retryable = True


class RequestTimeoutError(NetworkError):
    """The request ran out of time."""


class ResponseParsingError(ProviderError):
    """The provider's answer could not be decoded: not JSON, invalid UTF-8, or a field of the wrong type."""

    default_retryable = True


class ResponseTooLargeError(ResponseParsingError):
    """One streamed event (``max_event_bytes``) or the whole stream (``max_stream_bytes``) exceeded its cap."""


#: What decoding a vendor payload of the wrong shape raises (pydantic's ValidationError is a ValueError): the
#: one seam per decoder catches these and reports :func:`malformed`.
DECODE_FAULTS = (AttributeError, KeyError, TypeError, ValueError, IndexError)


def malformed(what: str, data: Any, exc: BaseException, *, provider: str | None,
              model: str | None) -> ResponseParsingError:
    """The error for a vendor payload whose fields have the wrong types or shape, with a short excerpt."""
    return ResponseParsingError(f"{what} has an unexpected shape ({type(exc).__name__}): {excerpt(data)}",
                                provider=provider, model=model)


def excerpt(data: Any, limit: int = 120) -> str:
    """A short, key-scrubbed preview of a vendor payload for an error message."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        text = bytes(data[: limit * 4]).decode("utf-8", errors="replace")
    else:
        text = repr(data)
    if len(text) > limit:
        text = text[:limit] + "..."
    return redact_secrets(text)


class StreamInterruptedError(ProviderError):
    """A stream failed after some of it had reached the caller; carries what arrived so far.

    ``partial_content`` is the text the caller has already seen, ``partial_usage`` the usage known so far.
    """

    default_retryable = False

    def __init__(self, message: str, *, partial_content: str = "", partial_usage: Any = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.partial_content = partial_content
        self.partial_usage = partial_usage


class AllProvidersFailedError(ProviderError, ExceptionGroup):  # type: ignore[misc]
    """Every deployment tried for a request failed.

    An :class:`ExceptionGroup` of each attempt's error, in order (``errors`` and ``exceptions`` are the same
    list), so ``except* RateLimitError:`` picks out the attempts that were rate limited; ``attempts`` holds the
    attempt trace. Status and Retry-After are those of the last error, so code that inspects them keeps working.
    """

    def __new__(cls, errors: Sequence[LLMError], **kw: Any) -> AllProvidersFailedError:
        """The group of ``errors`` (``ExceptionGroup`` needs them at construction)."""
        return super().__new__(cls, f"all {len(errors)} attempts failed", list(errors) or [LLMError("no attempt")])

    def __init__(self, errors: Sequence[LLMError], **kw: Any) -> None:
        self.errors = list(errors)
        last = errors[-1] if errors else None
        lines = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
        if isinstance(last, ProviderError):
            kw.setdefault("status_code", last.status_code)
            kw.setdefault("retry_after", last.retry_after)
            kw.setdefault("model", last.model)
            kw.setdefault("request_id", last.request_id)
        retryable = all(isinstance(e, ProviderError) and e.retryable for e in errors) if errors else False
        kw.setdefault("retryable", retryable)
        super().__init__(f"all {len(errors)} attempts failed: {lines}", **kw)

    def derive(self, excs: Sequence[Exception]) -> AllProvidersFailedError:
        """The group narrowed to ``excs`` (what ``except*`` and :meth:`split` build)."""
        return AllProvidersFailedError([e for e in excs if isinstance(e, LLMError)], provider=self.provider)

    def __str__(self) -> str:
        return LLMError.__str__(self)


#: The former name of :class:`RequestTimeoutError`; it shadowed the builtin when star-imported. Deprecated.
TimeoutError = RequestTimeoutError  # noqa: A001


def error_for_status(status: int | None, *, context_overflow: bool = False) -> type[ProviderError]:
    """The error class for an HTTP status (and whether the body says the context window overflowed)."""
    if status is None:
        return ProviderError
    if context_overflow and status in (400, 413, 422):
        return TokenLimitError
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return ModelNotFoundError
    if status == 408:
        return RequestTimeoutError
    if status == 413:
        return TokenLimitError
    if status == 429:
        return RateLimitError
    if status in (503, 529):
        return ServiceUnavailableError
    if status >= 500:
        return ProviderUnavailableError
    if status == 409:
        return ProviderUnavailableError
    if 400 <= status < 500:
        return InvalidRequestError
    return ProviderError
