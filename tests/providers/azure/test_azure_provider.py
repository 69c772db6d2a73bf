"""The ``azure`` provider against the simulator's Azure endpoint, on both transports: deployment and v1 routing,
api-key and Microsoft Entra ID auth, content filtering, Azure's error bodies and ``retry-after-ms``, health checks
that spend nothing, configuration errors, and keys that never leak."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _azure_test_helpers import AZURE_KEY

from spoon_llm.errors import AuthenticationError, ConfigurationError, ContentFilterError, RateLimitError
from spoon_llm.providers.azure import AzureOpenAIProvider
from spoon_llm.testing import Fault, ProviderSimulator, Reply, load_conformance


async def test_each_model_goes_to_its_deployment_with_the_api_version(sim: ProviderSimulator, make_provider: Any
                                                                      ) -> None:
    provider = await make_provider(api_version="2024-12-01-preview",
                                   azure_deployments={"gpt-4o": "prod-4o", "gpt-4o-mini": "cheap"})
    await provider.chat("hi")
    await provider.chat("hi", model="gpt-4o-mini")
    await provider.chat("hi", model="unmapped")
    paths = [(r.path, r.query) for r in sim.requests_for("azure")]
    assert paths == [(f"/openai/deployments/{d}/chat/completions", {"api-version": "2024-12-01-preview"})
                     for d in ("prod-4o", "cheap", "unmapped")]
    first = sim.requests_for("azure")[0]
    assert first.headers["api-key"] == "***" + AZURE_KEY[-4:]
    assert "authorization" not in first.headers
    assert first.body["model"] == "gpt-4o"
    assert provider.deployment_for("gpt-4o") == "prod-4o"


async def test_embeddings_go_to_the_embedding_deployment(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(azure_deployments={"text-embedding-3-small": "embed-prod"})
    result = await provider.embed(["a", "b"], model="text-embedding-3-small")
    assert len(result.embeddings) == 2
    assert sim.last_request("azure").path == "/openai/deployments/embed-prod/embeddings"


@pytest.mark.parametrize("config", [{"api_version": "v1"}, {"base_url_suffix": "/openai/v1"}])
async def test_the_v1_api_takes_the_model_in_the_body(sim: ProviderSimulator, make_provider: Any,
                                                      config: dict[str, Any]) -> None:
    settings = dict(config)
    suffix = settings.pop("base_url_suffix", "")
    provider = await make_provider(base_url=sim.azure_endpoint + suffix, **settings)
    response = await provider.chat("hi", model="gpt-4.1")
    chunks = [c async for c in provider.chat_stream("hi", model="gpt-4.1")]
    assert response.content and "".join(c.delta for c in chunks) == response.content
    for record in sim.requests_for("azure"):
        assert record.path == "/openai/v1/chat/completions" and record.query == {}
        assert record.body["model"] == "gpt-4.1"
        assert record.headers["api-key"] == "***" + AZURE_KEY[-4:]
        assert "authorization" not in record.headers


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_entra_id_tokens_come_from_the_provider_on_every_request(sim: ProviderSimulator, transport: str,
                                                                       kind: str) -> None:
    issued: list[str] = []

    def next_token() -> str:
        issued.append(f"eyJ0eXAiOiJKV1Qi.token-{len(issued)}")
        return issued[-1]

    async def next_token_async() -> str:
        await asyncio.sleep(0)
        return next_token()

    provider = AzureOpenAIProvider(token_provider=next_token if kind == "sync" else next_token_async)
    await provider.initialize({"base_url": sim.azure_endpoint, "model": "gpt-4o", "transport": transport})
    try:
        await provider.chat("one")
        _ = [c async for c in provider.chat_stream("two")]
        assert await provider.health_check() is True, provider.last_health_error
    finally:
        await provider.cleanup()
    records = sim.requests_for("azure")
    assert len(records) == 3 and len(issued) == 3
    assert records[-1].method == "GET" and records[-1].path == "/openai/models"
    for record, token in zip(records, issued, strict=True):
        assert record.headers["authorization"] == "Bearer ***" + token[-4:]
        assert "api-key" not in record.headers


async def test_a_static_entra_token_is_sent_as_bearer(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(api_key=None, azure_ad_token="eyJ0eXAi.static-token-9876")
    await provider.chat("hi")
    record = sim.last_request("azure")
    assert record.headers["authorization"] == "Bearer ***9876" and "api-key" not in record.headers


async def test_environment_variables_configure_endpoint_key_and_version(sim: ProviderSimulator, transport: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", sim.azure_endpoint)
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-01-01-preview")
    provider = AzureOpenAIProvider()
    await provider.initialize({"model": "gpt-4o", "transport": transport})
    try:
        await provider.chat("hi")
    finally:
        await provider.cleanup()
    record = sim.last_request("azure")
    assert record.query == {"api-version": "2025-01-01-preview"}
    assert record.headers["api-key"] == "***" + AZURE_KEY[-4:]


async def test_missing_endpoint_or_credentials_are_configuration_errors(sim: ProviderSimulator) -> None:
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        await AzureOpenAIProvider().initialize({"api_key": AZURE_KEY})
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_API_KEY") as info:
        await AzureOpenAIProvider().initialize({"base_url": sim.azure_endpoint})
    assert info.value.key == "providers.azure.api_key"
    with pytest.raises(ConfigurationError, match="keep one"):
        await AzureOpenAIProvider().initialize({"base_url": sim.azure_endpoint, "api_key": AZURE_KEY,
                                                "azure_ad_token": "static"})
    with pytest.raises(ConfigurationError, match="one Entra ID token source"):
        await AzureOpenAIProvider(token_provider=lambda: "t").initialize(
            {"base_url": sim.azure_endpoint, "azure_ad_token": "static"})


async def test_a_refused_prompt_raises_content_filter_error_with_its_categories(sim: ProviderSimulator,
                                                                               make_provider: Any) -> None:
    provider = await make_provider()
    for streamed in (False, True):
        sim.fault("azure", Fault(status=400, code="content_filter"))
        with pytest.raises(ContentFilterError) as info:
            if streamed:
                _ = [c async for c in provider.chat_stream("something hateful")]
            else:
                await provider.chat("something hateful")
        error = info.value
        assert error.status_code == 400 and error.error_code == "content_filter" and not error.retryable
        categories = error.body["innererror"]["content_filter_result"]
        assert categories["hate"] == {"filtered": True, "severity": "high"}


async def test_a_filtered_answer_finishes_with_content_filter_and_keeps_the_results(sim: ProviderSimulator,
                                                                                   make_provider: Any) -> None:
    provider = await make_provider()
    sim.script("azure", Reply(text="", finish_reason="content_filter"), times=2)
    response = await provider.chat("hi")
    chunks = [c async for c in provider.chat_stream("hi")]
    for finish, metadata in ((response.finish_reason, response.metadata),
                             (chunks[-1].finish_reason, chunks[-1].metadata)):
        assert finish == "content_filter"
        assert metadata["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
        assert "content_filter_results" in metadata


async def test_the_recorded_filtered_answer_keeps_the_flagged_category(sim: ProviderSimulator,
                                                                       make_provider: Any) -> None:
    cases = [c for c in load_conformance("azure") if c.name == "chat__openllmetry__test_azure.test_chat_content_"
             "filtering__i0"]
    if not cases:
        pytest.skip("conformance corpus not found (set SPOON_LLM_CONFORMANCE_DIR or put it at ../shared/conformance)")
    provider = await make_provider()
    sim.replay(cases[0])
    response = await provider.chat("hi")
    assert response.finish_reason == "content_filter" and response.content == ""
    assert response.metadata["content_filter_results"]["hate"] == {"filtered": True, "severity": "high"}


async def test_azure_streams_open_with_an_empty_filter_results_chunk(sim: ProviderSimulator,
                                                                     make_provider: Any) -> None:
    provider = await make_provider()
    sim.script("azure", Reply(text="Hello there, friend", chunks=["Hello", " there,", " friend"]))
    chunks = [c async for c in provider.chat_stream("hi")]
    assert [c.delta for c in chunks if c.delta] == ["Hello", " there,", " friend"]
    final = chunks[-1]
    assert final.finish_reason == "stop" and final.metadata["id"].startswith("chatcmpl-")
    assert final.model == "gpt-4o"


async def test_rate_limits_honour_retry_after_ms(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    sim.fault("azure", Fault(status=429, retry_after=0.25))
    with pytest.raises(RateLimitError) as info:
        await provider.chat("hi")
    error = info.value
    assert error.retry_after == 0.25 and error.retryable and error.error_code == "429"
    assert error.headers["retry-after-ms"] == "250"


async def test_a_bad_key_gets_azures_401_body_and_the_key_never_leaks(sim: ProviderSimulator,
                                                                      make_provider: Any) -> None:
    provider = await make_provider()
    sim.fault("azure", Fault(status=401))
    with pytest.raises(AuthenticationError) as info:
        await provider.chat("hi")
    error = info.value
    assert error.status_code == 401 and error.error_code == "401" and error.error_type is None
    assert error.message.endswith("use a correct regional API endpoint for your resource.")
    for text in (str(error), repr(error), repr(error.body), repr(provider), repr(provider.config),
                 repr(error.__cause__)):
        assert AZURE_KEY not in text


async def test_requests_without_credentials_are_refused_by_the_simulator(sim: ProviderSimulator) -> None:
    import httpx2

    async with httpx2.AsyncClient(base_url=sim.azure_endpoint) as client:
        answer = await client.post("/openai/deployments/x/chat/completions?api-version=2024-10-21",
                                   json={"messages": [{"role": "user", "content": "hi"}]})
        missing_version = await client.post("/openai/deployments/x/chat/completions", headers={"api-key": "k"},
                                            json={"messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "401"
    assert missing_version.status_code == 404


async def test_health_check_spends_nothing(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(api_version="2024-10-21")
    assert await provider.health_check() is True
    record = sim.last_request("azure")
    assert (record.method, record.path, record.query) == ("GET", "/openai/models", {"api-version": "2024-10-21"})
    assert not sim.requests_for("azure", "chat")
    sim.fault("azure", Fault(status=401), endpoint="models")
    assert await provider.health_check() is False
    assert isinstance(provider.last_health_error, AuthenticationError)


async def test_a_manager_configured_by_azures_own_variables_alone(sim: ProviderSimulator, transport: str) -> None:
    from spoon_llm import ConfigurationManager
    from spoon_llm.manager import LLMManager

    env = {"AZURE_OPENAI_API_KEY": AZURE_KEY, "AZURE_OPENAI_ENDPOINT": sim.azure_endpoint,
           "OPENAI_API_VERSION": "2024-06-01", "AZURE_MODEL": "gpt-4o"}
    manager = LLMManager(ConfigurationManager({"providers": {"azure": {"transport": transport}}}, env=env))
    try:
        response = await manager.chat("hi", provider="azure")
    finally:
        await manager.cleanup()
    assert response.provider == "azure"
    record = sim.last_request("azure")
    assert record.path == "/openai/deployments/gpt-4o/chat/completions"
    assert record.query == {"api-version": "2024-06-01"}
