"""Arguments no request can be built from are the caller's error: a typed ``ValidationError`` (never a bare
TypeError or ValueError), nothing sent, nothing left in flight, whichever provider and transport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from spoon_llm.errors import ValidationError
from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator

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
