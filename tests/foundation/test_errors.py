import sys

import pytest

from spoon_llm import errors
from spoon_llm.errors import (
    AuthenticationError,
    BudgetExceededError,
    ConfigurationError,
    ContentFilterError,
    InvalidRequestError,
    LLMError,
    ModelNotFoundError,
    NetworkError,
    PermissionDeniedError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseParsingError,
    ServiceUnavailableError,
    StreamInterruptedError,
    TimeoutError,
    TokenLimitError,
    ValidationError,
    error_for_status,
    redact_secrets,
    register_secret,
)

if sys.version_info >= (3, 11):
    from builtins import ExceptionGroup
else:  # pragma: no cover - 3.10
    from exceptiongroup import ExceptionGroup

PROVIDER_ERRORS = [
    (AuthenticationError, False), (PermissionDeniedError, False), (InvalidRequestError, False),
    (TokenLimitError, False), (ContentFilterError, False), (ModelNotFoundError, False), (RateLimitError, True),
    (ProviderUnavailableError, True), (ServiceUnavailableError, True), (NetworkError, True), (TimeoutError, True),
    (ResponseParsingError, True), (StreamInterruptedError, False),
]


@pytest.mark.parametrize(("cls", "retryable"), PROVIDER_ERRORS)
def test_every_provider_error_carries_its_fields(cls, retryable):
    error = cls("the provider said no", provider="openai", model="gpt-4o", status_code=429, request_id="req_9",
                retry_after=1.5, error_type="rate_limit_error")
    assert isinstance(error, ProviderError) and isinstance(error, LLMError)
    assert str(error) == "[openai] the provider said no"
    assert (error.provider, error.model, error.status_code, error.request_id, error.retry_after) == (
        "openai", "gpt-4o", 429, "req_9", 1.5)
    assert error.retryable is retryable
    assert "req_9" in repr(error) and cls.__name__ in repr(error)


def test_retryable_can_be_overridden():
    assert RateLimitError("x", retryable=False).retryable is False


@pytest.mark.parametrize(("cls", "kwargs"), [
    (ConfigurationError, {"source": "config.toml", "key": "providers.openai.max_tokens"}),
    (ValidationError, {}),
    (BudgetExceededError, {"budget": "global", "limit": 10.0, "spent": 10.5}),
])
def test_non_provider_errors(cls, kwargs):
    error = cls("something is off", provider="openai", **kwargs)
    assert str(error).startswith("[openai] ")
    assert "something is off" in str(error)


def test_configuration_error_names_source_and_key():
    error = ConfigurationError("expected a positive integer, got 'abc'", source="config.toml",
                               key="providers.openai.max_tokens")
    assert str(error) == "config.toml: providers.openai.max_tokens: expected a positive integer, got 'abc'"
    assert (error.source, error.key) == ("config.toml", "providers.openai.max_tokens")


def test_stream_interrupted_keeps_partial_output():
    error = StreamInterruptedError("connection dropped", provider="anthropic", partial_content="Hello wor")
    assert error.partial_content == "Hello wor"


@pytest.mark.parametrize(("status", "overflow", "expected"), [
    (400, False, InvalidRequestError), (400, True, TokenLimitError), (401, False, AuthenticationError),
    (403, False, PermissionDeniedError), (404, False, ModelNotFoundError), (408, False, TimeoutError),
    (413, False, TokenLimitError), (422, False, InvalidRequestError), (429, False, RateLimitError),
    (500, False, ProviderUnavailableError), (502, False, ProviderUnavailableError),
    (503, False, ServiceUnavailableError), (529, False, ServiceUnavailableError), (None, False, ProviderError),
])
def test_status_mapping(status, overflow, expected):
    assert error_for_status(status, context_overflow=overflow) is expected


def test_keys_never_survive_in_messages():
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"
    error = AuthenticationError(f"Incorrect API key provided: {key}", provider="openai")
    assert key not in str(error) and key not in repr(error) and key not in error.message
    assert "AIza" not in redact_secrets("key AIzaSyA1234567890abcdefghijklmnopqrstu")
    assert redact_secrets("Authorization: Bearer abc.def.ghijklmnop") == "Authorization: Bearer ***"
    assert redact_secrets("GET /v1/models?key=abcdefgh12345") == "GET /v1/models?key=***"


def test_registered_secrets_of_any_shape_are_removed():
    register_secret("plain-looking-secret-value")
    assert "plain-looking" not in str(ProviderError("oops plain-looking-secret-value leaked"))
    errors._known_secrets.discard("plain-looking-secret-value")


def test_all_providers_failed_is_an_exception_group_of_the_attempts():
    from spoon_llm.errors import AllProvidersFailedError, RateLimitError, ServiceUnavailableError

    limited = RateLimitError("slow down", provider="a", status_code=429, retry_after=3.0)
    down = ServiceUnavailableError("down", provider="b", status_code=503)
    group = AllProvidersFailedError([limited, down])
    assert isinstance(group, ExceptionGroup) and group.errors == [limited, down]
    assert list(group.exceptions) == [limited, down]
    assert group.status_code == 503 and str(group).startswith("all 2 attempts failed: RateLimitError")
    # ``except* RateLimitError`` splits the group the same way; ``split`` also runs on Python 3.10.
    only_limits, rest = group.split(RateLimitError)
    assert isinstance(only_limits, AllProvidersFailedError) and only_limits.errors == [limited]
    assert rest is not None and list(rest.exceptions) == [down]


def test_request_timeout_error_keeps_its_old_name():
    import builtins

    import spoon_llm
    from spoon_llm.errors import NetworkError, RequestTimeoutError, TimeoutError

    assert TimeoutError is RequestTimeoutError and spoon_llm.TimeoutError is RequestTimeoutError
    assert issubclass(RequestTimeoutError, NetworkError) and RequestTimeoutError is not builtins.TimeoutError
    assert RequestTimeoutError("slow").retryable
