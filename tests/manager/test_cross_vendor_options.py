"""One call vocabulary across vendors, and routing by declared capabilities, through the manager and the simulator.

Each vendor's own options reach that vendor only: a Gemini -> Anthropic -> OpenAI fallback carrying options for each
is served by the first healthy provider; a request needing embeddings skips a provider that cannot embed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from spoon_llm.errors import ProviderUnavailableError, ValidationError
from spoon_llm.manager import LLMManager
from spoon_llm.monitoring import MetricsCollector, enable_monitoring
from spoon_llm.testing import Fault, ProviderSimulator

SAFETY = [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]
# Options for every candidate of the chain: Gemini's the old top-level way, the others namespaced.
OPTIONS: dict[str, Any] = {
    "temperature": 0.3,
    "safety_settings": SAFETY,
    "gemini": {"top_k": 7},
    "anthropic": {"top_k": 5, "betas": ["example-beta-2025-01-01"]},
    "openai": {"logit_bias": {"50256": -100}, "extra_body": {"service_tier": "flex"}},
}


def _chain(make_manager: Callable[..., LLMManager], sim: ProviderSimulator) -> LLMManager:
    return make_manager({
        "gem": {"type": "gemini", "base_url": sim.gemini_base_url, "api_key": "AIzaSyTEST00000000000000000",
                "model": "gemini-2.5-flash"},
        "claude": {"type": "anthropic", "base_url": sim.anthropic_base_url, "model": "claude-sonnet-4-5"},
        "gpt": {"type": "openai", "model": "gpt-4o-mini"},
    }, fallback_chain=["claude", "gpt"], default_provider="gem")


def _bodies(sim: ProviderSimulator, vendor: str) -> list[Any]:
    return [r.body for r in sim.requests_for(vendor, "chat")]


async def test_gemini_serves_with_only_its_options(make_manager: Callable[..., LLMManager],
                                                   sim: ProviderSimulator) -> None:
    async with _chain(make_manager, sim) as manager:
        response = await manager.chat("hi", **OPTIONS)
    assert response.fallback_path == ["gem"]
    (body,) = _bodies(sim, "gemini")
    assert body["safetySettings"] == SAFETY
    assert body["generationConfig"]["topK"] == 7
    assert body["generationConfig"]["temperature"] == 0.3
    assert "logit_bias" not in str(body) and "betas" not in str(body)


async def test_anthropic_serves_when_gemini_is_down(make_manager: Callable[..., LLMManager],
                                                    sim: ProviderSimulator) -> None:
    sim.fault("gemini", Fault.server_error(), times=None)
    async with _chain(make_manager, sim) as manager:
        response = await manager.chat("hi", **OPTIONS)
    assert response.provider == "anthropic"
    assert response.fallback_path[-1] == "claude"
    (body,) = _bodies(sim, "anthropic")
    assert body["top_k"] == 5 and body["temperature"] == 0.3
    assert "safety_settings" not in body and "logit_bias" not in body and "betas" not in body
    (request,) = sim.requests_for("anthropic", "chat")
    assert "example-beta-2025-01-01" in (request.header("anthropic-beta") or "")


async def test_openai_serves_when_gemini_and_anthropic_are_down(make_manager: Callable[..., LLMManager],
                                                                sim: ProviderSimulator) -> None:
    sim.fault("gemini", Fault.server_error(), times=None)
    sim.fault("anthropic", Fault.unavailable(), times=None)
    async with _chain(make_manager, sim) as manager:
        response = await manager.chat("hi", **OPTIONS)
        streamed = [chunk async for chunk in manager.chat_stream("hi", **OPTIONS)]
    assert response.provider == "openai" and response.fallback_path[-1] == "gpt"
    assert streamed[-1].finish_reason is not None
    for body in _bodies(sim, "openai"):
        assert body["logit_bias"] == {"50256": -100} and body["service_tier"] == "flex"
        assert body["temperature"] == 0.3
        for foreign in ("safety_settings", "top_k", "betas", "gemini", "anthropic", "openai"):
            assert foreign not in body


async def test_embeddings_skip_a_provider_that_cannot_embed(make_manager: Callable[..., LLMManager],
                                                            sim: ProviderSimulator) -> None:
    metrics = MetricsCollector()
    async with _chain(make_manager, sim) as manager:
        enable_monitoring(manager, metrics=metrics)
        result = await manager.embed(["a", "b"], provider="claude", fallback=["gpt"])
        assert len(result.embeddings) == 2
        assert result.fallback_path == ["gpt"]
        skipped, served = result.attempts
        assert skipped.deployment == "claude" and "embeddings" in (skipped.skipped or "")
        assert served.deployment == "gpt" and served.skipped is None
        assert sim.requests_for("anthropic") == []
        with pytest.raises(ProviderUnavailableError, match="does not support embeddings"):
            await manager.embed("a", provider="claude")
    # A candidate passed over was never called: it is not counted as a call of that deployment.
    deployments = metrics.get_all_stats(by="deployment")
    assert "claude" not in deployments and deployments["gpt"]["total_requests"] == 1


async def test_a_tools_request_skips_a_provider_without_tools(make_manager: Callable[..., LLMManager],
                                                              sim: ProviderSimulator) -> None:
    manager = make_manager({"ppl": {"type": "perplexity", "base_url": sim.openai_base_url, "model": "sonar"},
                            "gpt": {"model": "gpt-4o-mini"}})
    async with manager:
        tool = {"name": "lookup", "description": "Look up", "parameters": {"type": "object", "properties": {}}}
        response = await manager.chat_with_tools("hi", [tool], provider="ppl", fallback=["gpt"])
        plain = await manager.chat("hi", provider="ppl", fallback=["gpt"])
    assert response.fallback_path == ["gpt"] and "tools" in (response.attempts[0].skipped or "")
    assert plain.fallback_path == ["ppl"]


async def test_dropped_options_are_logged_at_debug_without_values(make_manager: Callable[..., LLMManager],
                                                                  sim: ProviderSimulator,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    manager = make_manager({"claude": {"type": "anthropic", "base_url": sim.anthropic_base_url}})
    with caplog.at_level(logging.DEBUG, logger="spoon_llm.call_settings"):
        async with manager:
            await manager.chat("hi", safety_settings=[{"secret-ish": "value-xyz"}], seed=3)
    messages = [r.getMessage() for r in caplog.records if r.name == "spoon_llm.call_settings"]
    assert any("'safety_settings'" in m for m in messages) and any("'seed'" in m for m in messages)
    assert not any("value-xyz" in m for m in messages)


async def test_strict_vendors_still_refuse_typos(make_manager: Callable[..., LLMManager],
                                                 sim: ProviderSimulator) -> None:
    manager = make_manager({"claude": {"type": "anthropic", "base_url": sim.anthropic_base_url}})
    async with manager:
        with pytest.raises(ValidationError, match="unknown argument 'temprature'"):
            await manager.chat("hi", temprature=0.2)
        with pytest.raises(ValidationError, match="unknown key 'topk' in anthropic="):
            await manager.chat("hi", anthropic={"topk": 3})
        with pytest.raises(ValidationError, match="anthropic= takes a dict"):
            await manager.chat("hi", anthropic=["top_k"])
    assert sim.requests_for("anthropic") == []
