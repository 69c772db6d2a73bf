"""Every fault kind, per vendor, as the official SDKs see it."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import pytest

from spoon_llm.testing import Fault, ProviderSimulator

pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

VENDORS = ("openai", "anthropic", "gemini")
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-6", "gemini": "gemini-2.5-flash"}
PROMPT = "one two three four five six seven eight nine ten eleven twelve"


class Caller:
    """One chat call through a vendor's official SDK, plus accessors for its errors."""

    def __init__(self, vendor: str, client: Any) -> None:
        self.vendor = vendor
        self.client = client
        self.model = MODELS[vendor]

    async def chat(self, stream: bool = False) -> Any:
        """Return the parsed answer, or the list of stream items."""
        if self.vendor == "openai":
            messages: Any = [{"role": "user", "content": PROMPT}]
            if stream:
                response = await self.client.chat.completions.create(model=self.model, messages=messages, stream=True)
                return [chunk async for chunk in response]
            return await self.client.chat.completions.create(model=self.model, messages=messages)
        if self.vendor == "anthropic":
            messages = [{"role": "user", "content": PROMPT}]
            if stream:
                response = await self.client.messages.create(
                    model=self.model, max_tokens=100, messages=messages, stream=True
                )
                return [event async for event in response]
            return await self.client.messages.create(model=self.model, max_tokens=100, messages=messages)
        if stream:
            iterator = await self.client.models.generate_content_stream(model=self.model, contents=PROMPT)
            return [chunk async for chunk in iterator]
        return await self.client.models.generate_content(model=self.model, contents=PROMPT)

    def status(self, exc: BaseException) -> int:
        return int(exc.code if self.vendor == "gemini" else exc.status_code)  # type: ignore[attr-defined]

    def header(self, exc: BaseException, name: str) -> str | None:
        response = exc.response  # type: ignore[attr-defined]
        value = response.headers.get(name)
        return str(value) if value is not None else None

    def error(self, exc: BaseException) -> dict[str, Any]:
        """The vendor's error object (OpenAI/Anthropic ``error``, Gemini's RPC error)."""
        if self.vendor == "gemini":
            details = exc.details  # type: ignore[attr-defined]
            if isinstance(details.get("message"), str) and details["message"].startswith("{"):
                details = json.loads(details["message"])  # stream errors arrive as text/event-stream
            return dict(details["error"])
        body = exc.body  # type: ignore[attr-defined]
        return dict(body if self.vendor == "openai" else body["error"])


@pytest.fixture(params=VENDORS)
def caller(request: pytest.FixtureRequest) -> Caller:
    # Only the vendor's own client is built: SDK clients cost tens of milliseconds each.
    return Caller(request.param, request.getfixturevalue(f"{request.param}_client"))


def error_classes(vendor: str) -> dict[int, type[BaseException]]:
    if vendor == "openai":
        import openai

        return {
            400: openai.BadRequestError,
            401: openai.AuthenticationError,
            403: openai.PermissionDeniedError,
            404: openai.NotFoundError,
            429: openai.RateLimitError,
            500: openai.InternalServerError,
            503: openai.InternalServerError,
            529: openai.InternalServerError,
        }
    if vendor == "anthropic":
        import anthropic

        return {
            400: anthropic.BadRequestError,
            401: anthropic.AuthenticationError,
            403: anthropic.PermissionDeniedError,
            404: anthropic.NotFoundError,
            429: anthropic.RateLimitError,
            500: anthropic.InternalServerError,
            503: anthropic.InternalServerError,
            529: anthropic.OverloadedError,
        }
    from google.genai import errors

    return {s: errors.ClientError if s < 500 else errors.ServerError for s in (400, 401, 403, 404, 429, 500, 503, 529)}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_rate_limited_with_retry_after(caller: Caller, sim: ProviderSimulator, stream: bool) -> None:
    sim.fault(caller.vendor, Fault.rate_limited(retry_after=2))
    with pytest.raises(error_classes(caller.vendor)[429]) as info:
        await caller.chat(stream)
    assert caller.status(info.value) == 429
    assert caller.header(info.value, "retry-after") == "2"
    error = caller.error(info.value)
    if caller.vendor == "openai":
        assert caller.header(info.value, "retry-after-ms") == "2000"
        assert error["code"] == "rate_limit_exceeded"
    elif caller.vendor == "anthropic":
        assert error["type"] == "rate_limit_error"
    else:
        assert error["status"] == "RESOURCE_EXHAUSTED"
        assert error["details"][0]["retryDelay"] == "2s"
    # one-shot: the next call succeeds
    assert await caller.chat()


@pytest.mark.parametrize(
    ("status", "openai_code", "anthropic_type", "gemini_status"),
    [
        (401, "invalid_api_key", "authentication_error", "UNAUTHENTICATED"),
        (403, "model_not_found", "permission_error", "PERMISSION_DENIED"),
        (404, "model_not_found", "not_found_error", "NOT_FOUND"),
        (500, None, "api_error", "INTERNAL"),
        (503, None, "api_error", "UNAVAILABLE"),
    ],
)
async def test_error_statuses(
    caller: Caller,
    sim: ProviderSimulator,
    status: int,
    openai_code: str | None,
    anthropic_type: str,
    gemini_status: str,
) -> None:
    sim.fault(caller.vendor, Fault.error(status))
    with pytest.raises(error_classes(caller.vendor)[status]) as info:
        await caller.chat()
    assert caller.status(info.value) == status
    error = caller.error(info.value)
    if caller.vendor == "openai":
        assert error["code"] == openai_code
        assert caller.header(info.value, "x-request-id")
    elif caller.vendor == "anthropic":
        assert error["type"] == anthropic_type
        assert info.value.request_id == info.value.body["request_id"]  # type: ignore[attr-defined]
    else:
        assert error["status"] == gemini_status
        assert error["code"] == status


async def test_model_not_found_wording(caller: Caller, sim: ProviderSimulator) -> None:
    sim.fault(caller.vendor, Fault.model_not_found())
    with pytest.raises(error_classes(caller.vendor)[404]) as info:
        await caller.chat()
    message = caller.error(info.value)["message"]
    expected = {
        "openai": "The model `gpt-4o-mini` does not exist or you do not have access to it.",
        "anthropic": "model: claude-sonnet-4-6",
        "gemini": "models/gemini-2.5-flash is not found for API version v1, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods.",
    }[caller.vendor]
    assert message == expected


async def test_context_length_exceeded_wording(caller: Caller, sim: ProviderSimulator) -> None:
    sim.fault(caller.vendor, Fault.context_length_exceeded(limit=8))
    with pytest.raises(error_classes(caller.vendor)[400]) as info:
        await caller.chat()
    error = caller.error(info.value)
    # the prompt is ~16 tokens, above the 8-token limit
    if caller.vendor == "openai":
        assert error["code"] == "context_length_exceeded"
        assert error["message"] == (
            "This model's maximum context length is 8 tokens. However, your messages resulted in 16 tokens. "
            "Please reduce the length of the messages."
        )
    elif caller.vendor == "anthropic":
        assert error == {"type": "invalid_request_error", "message": "prompt is too long: 16 tokens > 8 maximum"}
    else:
        assert error["status"] == "INVALID_ARGUMENT"
        assert error["message"] == "The input token count (16) exceeds the maximum number of tokens allowed (8)."


async def test_overloaded_529(anthropic_client: Any, sim: ProviderSimulator) -> None:
    import anthropic

    sim.fault("anthropic", Fault.overloaded())
    with pytest.raises(anthropic.OverloadedError) as info:
        await Caller("anthropic", anthropic_client).chat()
    assert info.value.status_code == 529
    assert info.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}  # type: ignore[index]


async def test_custom_error_fields(openai_client: Any, sim: ProviderSimulator) -> None:
    import openai

    sim.fault("openai", Fault.error(400, "Bad thing", error_type="invalid_request_error", code="bad_thing"))
    with pytest.raises(openai.BadRequestError) as info:
        await Caller("openai", openai_client).chat()
    assert info.value.body == {
        "message": "Bad thing",
        "type": "invalid_request_error",
        "param": None,
        "code": "bad_thing",
    }


async def test_delay_before_headers(caller: Caller, sim: ProviderSimulator) -> None:
    sim.fault(caller.vendor, Fault.slow(0.3))
    start = time.perf_counter()
    assert await caller.chat()
    assert time.perf_counter() - start >= 0.3


async def test_delay_between_stream_chunks(caller: Caller, sim: ProviderSimulator) -> None:
    sim.fault(caller.vendor, Fault.slow_stream(0.02))
    start = time.perf_counter()
    items = await caller.chat(stream=True)
    assert len(items) >= 4
    assert time.perf_counter() - start >= 0.02 * 3


async def test_connection_reset_before_headers(caller: Caller, sim: ProviderSimulator) -> None:
    sim.fault(caller.vendor, Fault.connection_reset())
    with pytest.raises(Exception) as info:
        await caller.chat()
    if caller.vendor == "openai":
        import openai

        assert isinstance(info.value, openai.APIConnectionError)
    elif caller.vendor == "anthropic":
        import anthropic

        assert isinstance(info.value, anthropic.APIConnectionError)
    else:
        assert isinstance(info.value, OSError) or "Disconnected" in type(info.value).__name__
    assert await caller.chat()  # a fresh connection works


async def test_disconnect_mid_stream(caller: Caller, sim: ProviderSimulator) -> None:
    sim.fault(caller.vendor, Fault.disconnect(after=2))
    received: list[Any] = []

    async def consume() -> None:
        if caller.vendor == "openai":
            stream = await caller.client.chat.completions.create(
                model=caller.model, messages=[{"role": "user", "content": PROMPT}], stream=True
            )
        elif caller.vendor == "anthropic":
            stream = await caller.client.messages.create(
                model=caller.model, max_tokens=100, messages=[{"role": "user", "content": PROMPT}], stream=True
            )
        else:
            stream = await caller.client.models.generate_content_stream(model=caller.model, contents=PROMPT)
        async for item in stream:
            received.append(item)

    with pytest.raises(Exception) as info:
        await consume()
    assert len(received) == 2
    assert any(word in repr(info.value) for word in ("peer closed", "Connection error", "not completed", "incomplete"))


async def test_disconnect_non_stream_mid_body(caller: Caller, sim: ProviderSimulator) -> None:
    sim.fault(caller.vendor, Fault.disconnect(after=0))
    with pytest.raises(Exception):  # noqa: B017 - each SDK wraps the transport error differently
        await caller.chat()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_malformed_json(caller: Caller, sim: ProviderSimulator, stream: bool) -> None:
    sim.fault(caller.vendor, Fault.malformed_json())
    with pytest.raises(ValueError):  # json.JSONDecodeError / genai's UnknownApiResponseError
        await caller.chat(stream)


async def test_truncated_stream(caller: Caller, sim: ProviderSimulator) -> None:
    sim.fault(caller.vendor, Fault.truncated_stream(after=2))
    if caller.vendor == "gemini":
        from google.genai import errors

        with pytest.raises(errors.UnknownApiResponseError):
            await caller.chat(stream=True)
        return
    items = await caller.chat(stream=True)  # the SDK just sees the stream end early
    if caller.vendor == "openai":
        assert len(items) == 2
        assert all(c.choices[0].finish_reason is None for c in items)
    else:
        assert "message_stop" not in [e.type for e in items]


async def test_times_probability_and_seed(sim: ProviderSimulator) -> None:
    async def pattern() -> list[int]:
        sim.reset()
        sim.fault("openai", Fault.server_error(), times=None, probability=0.3, seed=42)
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
        async with httpx2.AsyncClient(base_url=sim.openai_base_url) as raw:
            return [(await raw.post("/chat/completions", json=body)).status_code for _ in range(40)]

    first, second = await pattern(), await pattern()
    assert first == second  # same seed, same failures
    assert 5 < first.count(500) < 20
    assert set(first) == {200, 500}


async def test_times_n(sim: ProviderSimulator) -> None:
    sim.fault("anthropic", Fault.unavailable(), times=2)
    body = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        codes = [(await raw.post("/v1/messages", json=body)).status_code for _ in range(3)]
    assert codes == [503, 503, 200]


async def test_fault_scoped_by_vendor_model_and_endpoint(sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.server_error(), model="gpt-4.1", times=None)
    sim.fault("openai", Fault.unauthorized(), endpoint="embeddings", times=None)
    chat = {"messages": [{"role": "user", "content": "x"}]}
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        mini = await raw.post("/v1/chat/completions", json=dict(chat, model="gpt-4o-mini"))
        big = await raw.post("/v1/chat/completions", json=dict(chat, model="gpt-4.1"))
        router = await raw.post("/api/v1/chat/completions", json=dict(chat, model="gpt-4.1"))
        embed = await raw.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
    assert (mini.status_code, big.status_code, router.status_code, embed.status_code) == (200, 500, 200, 401)


async def test_openrouter_error_shape(openrouter_client: Any, sim: ProviderSimulator) -> None:
    import openai

    sim.fault("openrouter", Fault.rate_limited(retry_after=1))
    with pytest.raises(openai.RateLimitError) as info:
        await openrouter_client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.body["code"] == 429  # type: ignore[index]
    assert info.value.response.headers["retry-after"] == "1"


async def test_gemini_stream_error_content_type(sim: ProviderSimulator) -> None:
    sim.fault("gemini", Fault.error(400))
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        response = await raw.post(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json={"contents": []}
        )
    # The real API answers stream requests' errors with a JSON body labelled as an event stream.
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/event-stream"
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_rate_limit_headers(sim: ProviderSimulator) -> None:
    sim.rate_limit_headers = True
    chat = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        first = await raw.post("/v1/chat/completions", json=chat)
        second = await raw.post("/v1/chat/completions", json=chat)
        claude = await raw.post("/v1/messages", json=chat, headers={"anthropic-version": "2023-06-01"})
        gemini = await raw.post("/v1beta/models/g:generateContent", json={"contents": []})
    assert first.headers["x-ratelimit-limit-requests"] == "10000"
    remaining = int(first.headers["x-ratelimit-remaining-requests"])
    assert int(second.headers["x-ratelimit-remaining-requests"]) in (remaining - 1, 9999)  # minute may roll over
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert claude.headers["anthropic-ratelimit-requests-limit"] == "10000"
    assert claude.headers["anthropic-ratelimit-tokens-reset"].endswith("Z")
    assert not any(h.startswith(("x-ratelimit", "anthropic-ratelimit")) for h in gemini.headers)
    sim.rate_limit_headers = False
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        plain = await raw.post("/v1/chat/completions", json=chat)
    assert "x-ratelimit-limit-requests" not in plain.headers


async def test_request_id_headers_everywhere(sim: ProviderSimulator) -> None:
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        ids = [
            (await raw.get("/v1/models")).headers["x-request-id"],
            (await raw.get("/v1/models", headers={"anthropic-version": "2023-06-01"})).headers["request-id"],
            (await raw.get("/v1beta/models")).headers["x-request-id"],
            (await raw.get("/api/v1/models")).headers["x-request-id"],
        ]
    assert len(set(ids)) == 4
