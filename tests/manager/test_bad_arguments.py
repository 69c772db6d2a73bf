"""Arguments no request can be built from are the caller's error: a typed ``ValidationError`` (never a bare
TypeError or ValueError), nothing sent, nothing left in flight, whichever provider and transport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from spoon_llm.errors import ValidationError
from spoon_llm.manager import LLMManager
from spoon_llm.testing import Fault, ProviderSimulator

CASES = [
    pytest.param([{"role": "user", "content": 5}], {}, id="content-a-number"),
    pytest.param([{"role": "user", "content": "hi"}], {"timeout": "abc"}, id="timeout-not-a-number"),
    pytest.param([{"role": "user", "content": "hi"}], {"tools": 5}, id="tools-not-a-list"),
    pytest.param([{"role": "assistant", "content": None, "tool_calls": 5}, {"role": "user", "content": "go"}], {},
                 id="tool-calls-not-a-list"),
]


@pytest.mark.parametrize(("messages", "kwargs"), CASES)
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_bad_arguments_raise_a_validation_error(make_manager: Callable[..., LLMManager],
                                                      sim: ProviderSimulator, provider: str,
                                                      messages: list[Any], kwargs: dict[str, Any]) -> None:
    manager = make_manager({"primary": {"type": provider, "model": "model-primary"}})
    with pytest.raises(ValidationError):
        await manager.chat(messages, **kwargs)
    with pytest.raises(ValidationError):
        async for _ in manager.chat_stream(messages, **kwargs):
            pass
    assert sim.request_count == 0
    stats = manager.get_stats()
    assert stats["inflight"] == 0 and stats["requests"] == stats["failures"]  # each one begun, failed


@pytest.mark.parametrize("call", [
    pytest.param({"deadline": 0}, id="deadline-zero"),
    pytest.param({"deadline": -1}, id="deadline-negative"),
    pytest.param({"tags": "team=research"}, id="tags-a-string"),
    pytest.param({"provider": 5}, id="provider-a-number"),
    pytest.param({"model": 5}, id="model-a-number"),
    pytest.param({"fallback": 5}, id="fallback-a-number"),
])
async def test_call_arguments_of_the_wrong_kind_are_refused_before_anything_is_sent(
        make_manager: Callable[..., LLMManager], sim: ProviderSimulator, call: dict[str, Any]) -> None:
    manager = make_manager({"primary": {"type": "openai", "model": "model-primary"}})
    with pytest.raises(ValidationError):
        await manager.chat("hi", **call)
    with pytest.raises(ValidationError):
        async for _ in manager.chat_stream("hi", **call):
            pass
    assert sim.request_count == 0 and manager.get_stats()["inflight"] == 0


async def test_fallback_may_name_one_provider(make_manager: Callable[..., LLMManager], sim: ProviderSimulator) -> None:
    manager = make_manager({"primary": {"type": "openai", "model": "model-primary"},
                            "backup": {"type": "openai", "model": "model-backup"}},
                           retry={"max_retries": 0})
    sim.fault("openai", Fault.server_error(), model="model-primary", times=None)
    answer = await manager.chat("hi", provider="primary", fallback="backup")
    assert answer.model == "model-backup"
