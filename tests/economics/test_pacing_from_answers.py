"""Successful answers carry the vendor's rate-limit headers, and the limiter paces the key from them."""

from typing import Any

import pytest

from spoon_llm import ConfigurationManager, LLMManager


@pytest.mark.parametrize("transport", ["native", "sdk"])
async def test_answers_carry_rate_limit_headers_to_the_limiter(sim: Any, transport: str) -> None:
    sim.rate_limit_headers = True
    config = ConfigurationManager({"providers": {
        "openai": {"api_key": "k-test-openai", "base_url": sim.openai_base_url, "model": "m", "transport": transport},
        "anthropic": {"api_key": "k-test-anthropic", "base_url": sim.anthropic_base_url,
                      "model": "claude-sonnet-4-6", "transport": transport}}}, env={})
    async with LLMManager(config) as manager:
        openai_answer = await manager.chat("hi", provider="openai")
        anthropic_answer = await manager.chat("hi", provider="anthropic")
        final = [chunk async for chunk in manager.chat_stream("hi", provider="openai")][-1]
        status = manager.get_status()["middleware"]["rate_limit"]["deployments"]
    assert openai_answer.metadata["rate_limit_headers"]["x-ratelimit-remaining-requests"].isdigit()
    assert "anthropic-ratelimit-requests-remaining" in anthropic_answer.metadata["rate_limit_headers"]
    assert "x-ratelimit-remaining-requests" in final.metadata["rate_limit_headers"]
    assert status["openai"]["provider_headers"]["requests_remaining"] is not None
    assert status["anthropic"]["provider_headers"]["requests_remaining"] is not None


async def test_answers_without_limit_headers_add_nothing(sim: Any) -> None:
    config = ConfigurationManager({"providers": {"openai": {"api_key": "k-test-openai",
                                                            "base_url": sim.openai_base_url, "model": "m"}}}, env={})
    async with LLMManager(config) as manager:
        answer = await manager.chat("hi")
    assert "rate_limit_headers" not in answer.metadata
