"""Failures of a live gateway: each status in each family's own shape, fallback under 503s, Retry-After."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx2
import openai
import pytest

from spoon_llm.server.keys import SQLiteKeyStore, new_key, server_secret
from spoon_llm.testing import Fault, ProviderSimulator, Reply, Usage

from .conftest import BODY_LIMIT, MASTER_KEY, Gateway

HI = [{"role": "user", "content": "hi"}]


def oai(gateway: Gateway, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def ant(gateway: Gateway, key: str = MASTER_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


@pytest.fixture
def openai_client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with oai(gateway) as c:
        yield c


@pytest.fixture
def anthropic_client(gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    with ant(gateway) as c:
        yield c


def openai_error(exc: openai.APIStatusError) -> dict[str, object]:
    body = exc.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert "Traceback" not in exc.response.text
    return body["error"]  # type: ignore[no-any-return]


def anthropic_error(exc: anthropic.APIStatusError) -> dict[str, object]:
    body = exc.response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    assert "Traceback" not in exc.response.text
    return body["error"]  # type: ignore[no-any-return]


async def _virtual_key(gateway: Gateway, alias: str, **fields: object) -> str:
    store = SQLiteKeyStore(gateway.state_dir / "keys.db")
    try:
        record, plain = new_key(alias, server_secret(None, MASTER_KEY), **fields)
        await store.create(record)
    finally:
        await store.close()
    return plain


@pytest.mark.parametrize("key", [None, "sk-wrong-key-0000000000"])
def test_401_in_both_shapes(gateway: Gateway, key: str | None) -> None:
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    response = httpx2.post(gateway.url + "/v1/chat/completions", headers=headers,
                           json={"model": "fast", "messages": HI}, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    if key is not None:
        with ant(gateway, key) as c, pytest.raises(anthropic.AuthenticationError) as caught:
            c.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=HI)
        assert anthropic_error(caught.value)["type"] == "authentication_error"
        assert key not in caught.value.response.text


async def test_403_model_not_allowed_for_a_virtual_key(gateway: Gateway) -> None:
    plain = await _virtual_key(gateway, "only-fast", models=["fast"])
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=plain, max_retries=0) as c:
        allowed = await c.chat.completions.create(model="fast", messages=HI)
        assert allowed.choices[0].message.content
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await c.chat.completions.create(model="gpt-4o", messages=HI)
        assert openai_error(caught.value)["code"] == "model_not_allowed"
        assert [m.id for m in (await c.models.list()).data] == ["fast"]
    with ant(gateway, plain) as client, pytest.raises(anthropic.PermissionDeniedError) as denied:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=HI)
    assert anthropic_error(denied.value)["type"] == "permission_error"
    metrics = httpx2.get(gateway.url + "/metrics", headers={"authorization": f"Bearer {plain}"}, timeout=5)
    assert metrics.status_code == 403  # a user key never reaches the operator's routes


def test_404_unknown_model_and_route(gateway: Gateway,
                                     openai_client: openai.OpenAI,
                                     anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.chat.completions.create(model="no-such-model", messages=HI)
    error = openai_error(caught.value)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    with pytest.raises(anthropic.NotFoundError) as missing:
        anthropic_client.messages.create(model="no-such-model", max_tokens=5, messages=HI)
    assert anthropic_error(missing.value)["type"] == "not_found_error"
    assert httpx2.get(gateway.url + "/v1/nothing", timeout=5).status_code == 404


def test_400_for_what_cannot_be_served(gateway: Gateway,
                                       sim: ProviderSimulator,
                                       openai_client: openai.OpenAI,
                                       anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model="fast", messages=HI, n=2)
    assert openai_error(caught.value)["param"] == "n"
    with pytest.raises(anthropic.BadRequestError) as server_tool:
        anthropic_client.messages.create(model="gpt-4o", max_tokens=5, messages=HI,
                                     tools=[{"type": "web_search_20250305", "name": "web_search"}])
    error = anthropic_error(server_tool.value)
    assert error["type"] == "invalid_request_error" and "cannot be translated" in str(error["message"])
    response = httpx2.post(gateway.url + "/v1/messages", headers={"x-api-key": MASTER_KEY}, content=b"{not json",
                           timeout=5)
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    # The upstream's own 400 keeps its status and its message.
    sim.fault("openai", Fault.context_length_exceeded(limit=1000), model="gpt-4o")
    with pytest.raises(openai.BadRequestError) as upstream:
        openai_client.chat.completions.create(model="gpt-4o", messages=HI)
    assert openai_error(upstream.value)["code"] == "context_length_exceeded"
    assert sim.request_count == 1  # a bad request is not retried


def test_413_body_too_large(gateway: Gateway,
                            sim: ProviderSimulator,
                            openai_client: openai.OpenAI,
                            anthropic_client: anthropic.Anthropic) -> None:
    big = [{"role": "user", "content": "x" * (BODY_LIMIT + 10)}]
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client.chat.completions.create(model="fast", messages=big)
    assert caught.value.status_code == 413
    assert openai_error(caught.value)["code"] == "request_too_large"
    with pytest.raises(anthropic.APIStatusError) as too_large:
        anthropic_client.messages.create(model="fast", max_tokens=5, messages=big)
    assert too_large.value.status_code == 413
    assert anthropic_error(too_large.value)["type"] == "request_too_large"
    assert sim.request_count == 0


def test_429_with_retry_after_passed_through(gateway: Gateway,
                                             sim: ProviderSimulator,
                                             openai_client: openai.OpenAI,
                                             anthropic_client: anthropic.Anthropic) -> None:
    sim.fault("openai", Fault.rate_limited(retry_after=7), model="limited-model", times=None)
    sim.fault("openai", Fault.rate_limited(retry_after=9), model="throttled-model", times=None)
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client.chat.completions.create(model="limited-model", messages=HI)
    assert caught.value.response.headers["retry-after"] == "7"
    assert openai_error(caught.value)["type"] == "rate_limit_error"
    with pytest.raises(anthropic.RateLimitError) as limited:
        anthropic_client.messages.create(model="throttled-model", max_tokens=5, messages=HI)
    assert limited.value.response.headers["retry-after"] == "9"
    assert anthropic_error(limited.value)["type"] == "rate_limit_error"


def test_fallback_under_503s_shows_in_the_attempt_trace(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.unavailable(), model="flaky-model", times=None)
    with oai(gateway) as c:
        raw = c.chat.completions.with_raw_response.create(model="resilient", messages=HI)
    assert raw.parse().choices[0].message.content == "Simulated reply to: hi"
    assert raw.headers["x-spoon-provider"] == "anthropic"
    trace = raw.headers["x-spoon-attempts"].split(",")
    assert trace[0] == "flaky:503" and trace[-1] == "anthropic:ok"
    assert len(sim.requests_for("openai")) == len(trace) - 1  # each failed attempt reached the simulator


def test_upstream_failures_become_502_503_504(gateway: Gateway,
                                              sim: ProviderSimulator,
                                              openai_client: openai.OpenAI,
                                              anthropic_client: anthropic.Anthropic) -> None:
    sim.fault("openai", Fault.unavailable(retry_after=1), model="down-model", times=None)
    with pytest.raises(openai.APIStatusError) as unavailable:
        openai_client.chat.completions.create(model="down-model", messages=HI)
    assert unavailable.value.status_code == 503
    assert openai_error(unavailable.value)["code"] == "upstream_unavailable"
    sim.fault("openai", Fault.server_error(), model="broken-model", times=None)
    with pytest.raises(anthropic.APIStatusError) as broken:
        anthropic_client.messages.create(model="broken-model", max_tokens=5, messages=HI)
    assert broken.value.status_code == 502
    assert anthropic_error(broken.value)["type"] == "api_error"
    sim.fault("openai", Fault.slow(5), model="sluggish-model", times=None)
    response = httpx2.post(gateway.url + "/v1/chat/completions",
                           headers={"authorization": f"Bearer {MASTER_KEY}", "x-spoon-deadline": "0.5"},
                           json={"model": "sluggish-model", "messages": HI}, timeout=10)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_upstream_key_refused_is_a_502_not_a_401(gateway: Gateway,
                                                 sim: ProviderSimulator,
                                                 openai_client: openai.OpenAI) -> None:
    sim.fault("openai", Fault.unauthorized(), model="denied-model", times=None)
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client.chat.completions.create(model="denied-model", messages=HI)
    assert caught.value.status_code == 502
    assert "sk-sim-denied" not in caught.value.response.text  # the provider key never reaches the client


def test_stream_failure_before_the_first_chunk_is_an_ordinary_error(gateway: Gateway,
                                                                    sim: ProviderSimulator,
                                                                    openai_client: openai.OpenAI) -> None:
    sim.fault("openai", Fault.rate_limited(retry_after=3), model="capped-model", times=None)
    with pytest.raises(openai.RateLimitError) as caught:
        list(openai_client.chat.completions.create(model="capped-model", messages=HI, stream=True))
    assert caught.value.response.headers["retry-after"] == "3"


async def test_key_limits_answer_429_and_402(gateway: Gateway, sim: ProviderSimulator) -> None:
    limited = await _virtual_key(gateway, "two-a-minute", rpm=2)
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=limited, max_retries=0) as c:
        for _ in range(2):
            await c.chat.completions.create(model="fast", messages=HI)
        with pytest.raises(openai.RateLimitError) as caught:
            await c.chat.completions.create(model="fast", messages=HI)
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert openai_error(caught.value)["code"] == "rate_limited"
    # The first call's worst case fits the budget; what it really costs (scripted usage) uses the budget up.
    sim.script("openai", Reply(text="costly", usage=Usage(input_tokens=1000, output_tokens=1000)), times=1)
    broke = await _virtual_key(gateway, "small-budget", budget_limit=0.0001)
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key=broke, max_retries=0) as a:
        await a.messages.create(model="fast", max_tokens=5, messages=HI)
        with pytest.raises(anthropic.APIStatusError) as over:
            await a.messages.create(model="fast", max_tokens=5, messages=HI)
    assert over.value.status_code == 402
    assert anthropic_error(over.value)["type"] == "billing_error"


def test_stream_failing_midway_ends_with_the_family_error_event(gateway: Gateway, sim: ProviderSimulator,
                                                                openai_client: openai.OpenAI,
                                                                anthropic_client: anthropic.Anthropic) -> None:
    long_text = Reply(text=" ".join(f"w{i}" for i in range(40)))
    sim.script("openai", long_text, model="broken-model")
    sim.fault("openai", Fault.disconnect(after=4), model="broken-model", times=None)
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in openai_client.chat.completions.create(model="broken-model", messages=HI, stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received)  # some text arrived before the failure
    assert "stream failed" in str(caught.value.message)
    events: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as ended, anthropic_client.messages.stream(
            model="broken-model", max_tokens=100, messages=HI) as stream:
        for event in stream:
            events.append(event.type)
    assert events[0] == "message_start" and "message_stop" not in events
    assert ended.value.body["error"]["type"] == "api_error"  # type: ignore[index]
