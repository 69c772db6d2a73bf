"""Error mapping: error bodies and the SDK's typed exceptions -> our error tree (no I/O)."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from spoon_llm import errors as ours
from spoon_llm.providers._transport import ErrorScope
from spoon_llm.providers.openai._errors import error_from_body, map_exception

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")


def status_error(cls: type[openai.APIStatusError], status: int, error: dict[str, Any],
                 headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST, json={"error": error})
    return cls(f"Error code: {status} - {error.get('message')}", response=response, body=error)


@pytest.mark.parametrize(("exc", "expected"), [
    (status_error(openai.AuthenticationError, 401, {"message": "bad key", "code": "invalid_api_key"}),
     ours.AuthenticationError),
    (status_error(openai.PermissionDeniedError, 403, {"message": "no"}), ours.PermissionDeniedError),
    (status_error(openai.NotFoundError, 404, {"message": "no model", "code": "model_not_found"}),
     ours.ModelNotFoundError),
    (status_error(openai.BadRequestError, 400, {"message": "too long", "code": "context_length_exceeded"}),
     ours.TokenLimitError),
    (status_error(openai.BadRequestError, 400, {"message": "flagged", "code": "content_filter"}),
     ours.ContentFilterError),
    (status_error(openai.BadRequestError, 400, {"message": "bad"}), ours.InvalidRequestError),
    (status_error(openai.UnprocessableEntityError, 422, {"message": "bad"}), ours.InvalidRequestError),
    (status_error(openai.ConflictError, 409, {"message": "busy"}), ours.ProviderUnavailableError),
    (status_error(openai.InternalServerError, 500, {"message": "oops", "type": "server_error"}),
     ours.ProviderUnavailableError),
    (status_error(openai.InternalServerError, 503, {"message": "overloaded"}), ours.ServiceUnavailableError),
    (openai.APITimeoutError(request=REQUEST), ours.TimeoutError),
    (openai.APIConnectionError(request=REQUEST), ours.NetworkError),
    (httpx2.ReadTimeout("slow"), ours.TimeoutError),
    (httpx2.RemoteProtocolError("peer closed"), ours.NetworkError),
])
def test_sdk_exceptions_map_by_type(exc: Exception, expected: type[ours.ProviderError]) -> None:
    mapped = map_exception(exc, provider="openai", model="gpt-4o")
    assert type(mapped) is expected
    assert mapped.provider == "openai" and mapped.model == "gpt-4o"
    if isinstance(exc, openai.APIStatusError):
        assert mapped.status_code == exc.status_code
        assert mapped.message == exc.body["message"]  # the provider's message, not the SDK's "Error code: ..."
    if isinstance(mapped, (ours.NetworkError, ours.RateLimitError, ours.ProviderUnavailableError)):
        assert mapped.retryable


def test_rate_limit_carries_retry_after_request_id_and_headers() -> None:
    exc = status_error(openai.RateLimitError, 429, {"message": "slow down", "type": "requests",
                                                    "code": "rate_limit_exceeded"},
                       headers={"retry-after-ms": "1500", "retry-after": "2", "x-request-id": "req_9",
                                "x-ratelimit-remaining-requests": "0", "set-cookie": "secret"})
    mapped = map_exception(exc, provider="openai", model="gpt-4o")
    assert isinstance(mapped, ours.RateLimitError) and mapped.retryable
    assert mapped.retry_after == 1.5 and mapped.request_id == "req_9"
    assert mapped.error_type == "requests" and mapped.error_code == "rate_limit_exceeded"
    assert mapped.headers == {"retry-after-ms": "1500", "retry-after": "2", "x-ratelimit-remaining-requests": "0"}


def test_insufficient_quota_is_not_retryable_and_x_should_retry_wins() -> None:
    quota = error_from_body(429, {"error": {"message": "quota", "code": "insufficient_quota"}},
                            provider="openai", model=None)
    assert isinstance(quota, ours.RateLimitError) and not quota.retryable
    told = error_from_body(500, {"error": {"message": "x"}}, provider="openai", model=None,
                           headers={"x-should-retry": "false"})
    assert not told.retryable


@pytest.mark.parametrize(("status", "body", "expected"), [
    (400, {"error": {"message": "This model's maximum context length is 8192 tokens. However, you requested 9000"}},
     ours.TokenLimitError),  # vLLM / DeepSeek: no code, only the wording
    (403, {"error": {"code": 403, "message": "flagged", "metadata": {"reasons": ["violence"]}}},
     ours.ContentFilterError),  # OpenRouter moderation
    (400, {"error": {"message": "Your prompt was flagged", "code": "invalid_prompt"}}, ours.ContentFilterError),
    (402, {"error": {"message": "Insufficient Balance"}}, ours.InvalidRequestError),
    (500, "upstream exploded", ours.ProviderUnavailableError),
    (None, {"error": {"message": "?"}}, ours.ProviderError),
])
def test_error_bodies(status: int | None, body: Any, expected: type[ours.ProviderError]) -> None:
    error = error_from_body(status, body, provider="p", model="m")
    assert type(error) is expected
    assert error.message in str(body) or error.message == "upstream exploded"


def test_keys_never_reach_messages_bodies_or_reprs() -> None:
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"
    error = error_from_body(401, {"error": {"message": f"Incorrect API key provided: {key}"}},
                            provider="openai", model="m")
    for text in (str(error), repr(error), str(error.body)):
        assert key not in text


def _translate(exc: BaseException, model: str | None) -> ours.LLMError | None:
    return map_exception(exc, provider="openai", model=model)


def test_the_mapper_raises_ours_from_the_original_and_leaves_the_rest_alone() -> None:
    original = openai.APIConnectionError(request=REQUEST)
    with pytest.raises(ours.NetworkError) as info:
        with ErrorScope(_translate, "m"):
            raise original
    assert info.value.__cause__ is original
    with pytest.raises(KeyError):
        with ErrorScope(_translate, "m"):
            raise KeyError("not ours to map")
    with pytest.raises(ours.ValidationError):
        with ErrorScope(_translate, "m"):
            raise ours.ValidationError("already ours")


async def test_the_mapper_works_as_an_async_context_manager() -> None:
    with pytest.raises(ours.TimeoutError):
        async with ErrorScope(_translate, "m"):
            raise openai.APITimeoutError(request=REQUEST)
