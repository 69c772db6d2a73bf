"""``api = "responses"`` on the azure provider: chat and streams through Azure's v1 Responses API, both transports."""

from __future__ import annotations

from typing import Any

import pytest
from _azure_test_helpers import AZURE_KEY  # on sys.path through conftest.py

from spoon_llm.errors import ConfigurationError
from spoon_llm.streaming import collect_stream
from spoon_llm.testing import ProviderSimulator


async def test_chat_and_streams_go_to_the_v1_responses_path(make_provider: Any, sim: ProviderSimulator) -> None:
    provider = await make_provider(api="responses", model="gpt-4.1-mini")
    answer = await provider.chat("hello", max_tokens=40)
    streamed = await collect_stream(provider.chat_stream("hello again"))
    assert answer.content == "Simulated reply to: hello" and answer.native_finish_reason == "completed"
    assert streamed.content == "Simulated reply to: hello again"
    sent = sim.requests_for("openai_responses")
    assert [r.path for r in sent] == ["/openai/v1/responses"] * 2
    assert sent[0].body["max_output_tokens"] == 40 and sent[0].body["model"] == "gpt-4.1-mini"
    assert sent[0].header("authorization") == f"Bearer ***{AZURE_KEY[-4:]}"
    assert sim.requests_for("azure", "chat") == []
    vectors = await provider.embed(["a"])  # embeddings stay on the deployment route
    assert len(vectors.embeddings) == 1 and sim.requests_for("azure", "embeddings")


async def test_a_fixed_entra_token_is_the_bearer(make_provider: Any, sim: ProviderSimulator) -> None:
    provider = await make_provider(api="responses", api_key=None, azure_ad_token="entra-token-fixed-0042")
    await provider.chat("hello")
    assert sim.last_request("openai_responses").header("authorization") == "Bearer ***0042"


async def test_a_token_provider_is_refused_with_the_fix(sim: ProviderSimulator, transport: str) -> None:
    from spoon_llm.providers.azure import AzureOpenAIProvider

    provider = AzureOpenAIProvider(token_provider=lambda: "entra-token-dynamic")
    with pytest.raises(ConfigurationError) as info:
        await provider.initialize({"base_url": sim.azure_endpoint, "api": "responses", "transport": transport})
    assert info.value.key == "providers.azure.api" and 'use the default api = "chat"' in str(info.value)
    assert "entra-token-dynamic" not in str(info.value)
