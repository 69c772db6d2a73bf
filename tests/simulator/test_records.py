"""The request log: what is recorded, how secrets are masked, reset and bounds."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from spoon_llm.testing import Fault, ProviderSimulator, RecordedRequest, Reply
from spoon_llm.testing._records import mask_secret

pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


async def test_sdk_requests_are_recorded_with_masked_keys(
    sim: ProviderSimulator, openai_client: Any, anthropic_client: Any, gemini_client: Any
) -> None:
    await openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
    await anthropic_client.messages.create(
        model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "b"}]
    )
    await gemini_client.models.generate_content(model="gemini-2.5-flash", contents="c")
    openai_req, anthropic_req, gemini_req = sim.requests
    assert isinstance(openai_req, RecordedRequest)
    assert openai_req.method == "POST"
    assert openai_req.path == "/v1/chat/completions"
    assert openai_req.body["messages"] == [{"role": "user", "content": "a"}]
    assert (openai_req.vendor, openai_req.endpoint, openai_req.model, openai_req.stream) == (
        "openai",
        "chat",
        "gpt-4o-mini",
        False,
    )
    assert openai_req.header("Authorization") == "Bearer ***0001"
    assert anthropic_req.vendor == "anthropic"
    assert anthropic_req.headers["anthropic-version"]
    assert gemini_req.headers["x-goog-api-key"] == "***0003"
    everything = repr(sim.requests)
    for secret in ("sk-test-openai-key-0001", "sk-ant-test-key-0002", "AIza-test-gemini-key-0003"):
        assert secret not in everything


async def test_all_credential_headers_and_key_param_masked(sim: ProviderSimulator) -> None:
    headers = {
        "authorization": "Bearer sk-live-abcdefghijklmnop",
        "x-api-key": "sk-ant-abcdefghijklmnop",
        "x-goog-api-key": "AIzaSyabcdefghijklmnop",
        "api-key": "azure-abcdefghijklmnop",
        "x-custom": "kept",
    }
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        await raw.post(
            "/v1beta/models/gemini-2.5-flash:generateContent?key=AIzaSecretKey123456", json={}, headers=headers
        )
    record = sim.last_request()
    assert record.headers["authorization"] == "Bearer ***mnop"
    assert record.headers["x-api-key"] == "***mnop"
    assert record.headers["x-goog-api-key"] == "***mnop"
    assert record.headers["api-key"] == "***mnop"
    assert record.headers["x-custom"] == "kept"
    assert record.query == {"key": "***3456"}
    assert "abcdefghij" not in repr(record) and "SecretKey" not in repr(record)


def test_mask_secret_short_values() -> None:
    assert mask_secret("short") == "***"
    assert mask_secret("Bearer x") == "Bearer ***"
    assert mask_secret("Basic dXNlcjpwYXNzd29yZA==") == "Basic ***ZA=="


async def test_last_request_requests_for_and_reset(sim: ProviderSimulator) -> None:
    with pytest.raises(LookupError):
        sim.last_request()
    sim.script("openai", Reply(text="x"))
    sim.fault("anthropic", Fault.server_error(), times=None)
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        await raw.post("/v1/chat/completions", json={"model": "a", "messages": []})
        await raw.post("/v1/messages", json={"model": "b", "messages": [], "max_tokens": 1, "stream": True})
        await raw.get("/v1/models")
    assert sim.request_count == 3
    assert sim.last_request("anthropic").stream is True
    assert sim.last_request().endpoint == "models"
    assert [r.model for r in sim.requests_for("openai", endpoint="chat")] == ["a"]
    assert len(sim.requests_for("openai")) == 2
    sim.reset()
    assert sim.requests == []
    assert sim.request_count == 0
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        chat = await raw.post(
            "/v1/chat/completions", json={"model": "a", "messages": [{"role": "user", "content": "q"}]}
        )
        claude = await raw.post("/v1/messages", json={"model": "b", "messages": [], "max_tokens": 1})
    assert chat.json()["choices"][0]["message"]["content"] == "Simulated reply to: q"  # script gone
    assert claude.status_code == 200  # fault gone


def test_max_records_bounds_the_log() -> None:
    with ProviderSimulator(max_records=3) as sim, httpx2.Client(base_url=sim.base_url) as raw:
        for i in range(5):
            raw.get(f"/v1/models/m{i}")
        assert [r.model for r in sim.requests] == ["m2", "m3", "m4"]
        assert sim.request_count == 5


async def test_non_json_body_recorded_as_text_and_rejected(sim: ProviderSimulator) -> None:
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        response = await raw.post(
            "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert sim.last_request().body == "{not json"
