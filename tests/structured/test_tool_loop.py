"""``run_tools=True`` through the simulator: a two-tool, three-turn conversation with parallel calls run
concurrently, tool errors reported to the model, typed final answers, and the typed error at ``max_turns``."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from pydantic import BaseModel

from spoon_llm import MaxTurnsExceededError, Message, ToolExecutionError, ValidationError
from spoon_llm.testing import ProviderSimulator, Reply, ToolCall, Usage

VENDORS = ("openai", "anthropic", "gemini")
# A generous bound on the rendezvous below: reached only if the two calls were (wrongly) run one after the other.
RENDEZVOUS_BOUND = 60.0


class Tools:
    """Two async tools that can only both finish if they run at the same time, and one sync tool."""

    def __init__(self) -> None:
        self.a_started = asyncio.Event()
        self.b_started = asyncio.Event()
        self.sync_threads: list[int] = []

    async def fetch_a(self, key: str) -> dict[str, Any]:
        """Fetch A.

        Args:
            key: Which record.
        """
        self.a_started.set()
        await asyncio.wait_for(self.b_started.wait(), RENDEZVOUS_BOUND)  # B must be running too
        return {"a": key}

    async def fetch_b(self, key: str) -> dict[str, Any]:
        """Fetch B.

        Args:
            key: Which record.
        """
        self.b_started.set()
        await asyncio.wait_for(self.a_started.wait(), RENDEZVOUS_BOUND)  # A must be running too
        return {"b": key}

    def total(self, values: list[int]) -> int:
        """Add numbers up.

        Args:
            values: The numbers.
        """
        self.sync_threads.append(threading.get_ident())
        return sum(values)


def _script_three_turns(sim: ProviderSimulator, vendor: str) -> None:
    sim.script(vendor, Reply(tool_calls=[ToolCall("fetch_a", {"key": "x"}), ToolCall("fetch_b", {"key": "y"})],
                             usage=Usage(input_tokens=10, output_tokens=5)), times=1)
    sim.script(vendor, Reply(tool_calls=[ToolCall("total", {"values": [1, 2, 3]})],
                             usage=Usage(input_tokens=20, output_tokens=5)), times=1)
    sim.script(vendor, Reply(text="A is x, B is y, total 6.", usage=Usage(input_tokens=30, output_tokens=7)),
               times=1)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_two_tools_three_turns_parallel_calls_run_concurrently(sim: ProviderSimulator, make_manager: Any,
                                                                     vendor: str) -> None:
    tools = Tools()
    _script_three_turns(sim, vendor)
    response = await make_manager(vendor).chat("Look up x and y, then add 1, 2, 3.",
                                               tools=[tools.fetch_a, tools.fetch_b, tools.total],
                                               run_tools=True, max_turns=5)
    assert response.content == "A is x, B is y, total 6."
    assert tools.sync_threads and tools.sync_threads[0] != threading.get_ident()  # sync tool ran in a thread
    # The whole exchange: question, two parallel calls and their results, one call and its result, the answer.
    messages = response.messages
    assert messages is not None
    assert [m.role for m in messages] == ["user", "assistant", "tool", "tool", "assistant", "tool", "assistant"]
    assert [c.name for c in messages[1].tool_calls or []] == ["fetch_a", "fetch_b"]
    assert json.loads(messages[2].text) == {"a": "x"} and json.loads(messages[3].text) == {"b": "y"}
    assert messages[5].text == "6"
    assert messages[2].tool_call_id == (messages[1].tool_calls or [])[0].id
    # Usage and cost summed over the three turns; three requests went out, each through the whole chain.
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (60, 17)
    assert len(response.attempts) == 3
    requests = sim.requests_for(vendor)
    assert len(requests) == 3
    assert '{"a":"x"}' in str(requests[1].body) or "'a': 'x'" in str(requests[1].body)
    # The tools were described to the model with their docstrings.
    assert "Fetch A." in str(requests[0].body)


async def test_a_raising_tool_is_reported_to_the_model(sim: ProviderSimulator, make_manager: Any) -> None:
    def explode(reason: str) -> str:
        """Always fails."""
        raise RuntimeError(f"boom: {reason}")

    sim.script("openai", Reply(tool_calls=[ToolCall("explode", {"reason": "test"})]), times=1)
    sim.script("openai", Reply(text="The tool failed."), times=1)
    response = await make_manager("openai").chat("Go", tools=[explode], run_tools=True)
    assert response.content == "The tool failed."
    assert response.messages is not None
    assert response.messages[2].text == "Error: RuntimeError: boom: test"
    assert "boom: test" in str(sim.requests_for("openai")[-1].body)


async def test_tool_errors_callable_and_raise(sim: ProviderSimulator, make_manager: Any) -> None:
    def explode() -> str:
        """Always fails."""
        raise KeyError("missing")

    sim.script("openai", Reply(tool_calls=[ToolCall("explode", {})]), times=1)
    sim.script("openai", Reply(text="ok"), times=1)
    manager = make_manager("openai")
    response = await manager.chat("Go", tools=[explode], run_tools=True,
                                  tool_errors=lambda exc, call: f"{call.name} failed: {type(exc).__name__}")
    assert response.messages is not None and response.messages[2].text == "explode failed: KeyError"

    sim.script("openai", Reply(tool_calls=[ToolCall("explode", {})]), times=1)
    with pytest.raises(ToolExecutionError) as caught:
        await manager.chat("Go", tools=[explode], run_tools=True, tool_errors="raise")
    assert caught.value.tool_name == "explode" and isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(ValidationError, match="tool_errors"):
        await manager.chat("Go", tools=[explode], run_tools=True, tool_errors="ignore")


async def test_invalid_arguments_and_unknown_tools_are_reported(sim: ProviderSimulator, make_manager: Any) -> None:
    def double(n: int) -> int:
        """Twice n."""
        return 2 * n

    sim.script("openai", Reply(tool_calls=[ToolCall("double", {"n": "many"}), ToolCall("triple", {"n": 1})]),
               times=1)
    sim.script("openai", Reply(text="done"), times=1)
    response = await make_manager("openai").chat("Go", tools=[double], run_tools=True)
    assert response.messages is not None
    assert response.messages[2].text.startswith("Error: invalid arguments:")
    assert response.messages[3].text == "Error: there is no tool named 'triple'; available: double"


async def test_max_turns_raises_with_the_conversation(sim: ProviderSimulator, make_manager: Any) -> None:
    def again() -> str:
        """Loop."""
        return "more"

    sim.script("openai", Reply(tool_calls=[ToolCall("again", {})], usage=Usage(input_tokens=5, output_tokens=1)),
               times=None)
    with pytest.raises(MaxTurnsExceededError) as caught:
        await make_manager("openai").chat("Go", tools=[again], run_tools=True, max_turns=3)
    error = caught.value
    assert error.max_turns == 3 and len(sim.requests_for("openai")) == 3
    assert [m.role for m in error.messages] == ["user"] + ["assistant", "tool"] * 3
    assert error.usage is not None and error.usage.input_tokens == 15


class Answer(BaseModel):
    total: int


async def test_typed_final_answer_after_tools_with_reask(sim: ProviderSimulator, make_manager: Any) -> None:
    tools = Tools()
    sim.script("anthropic", Reply(tool_calls=[ToolCall("total", {"values": [2, 2]})]), times=1)
    sim.script("anthropic", Reply(text='{"total": "four"}'), times=1)
    sim.script("anthropic", Reply(text='{"total": 4}'), times=1)
    response = await make_manager("anthropic").chat("Add 2 and 2", tools=[tools.total], run_tools=True,
                                                    response_format=Answer, output_retries=1)
    assert response.parsed == Answer(total=4)
    assert [a.error_type for a in response.attempts] == [None, "OutputValidationError", None]
    assert "output_config" in sim.requests_for("anthropic")[0].body


class Lookup(BaseModel):
    """Look a word up."""

    word: str


async def test_a_model_tool_call_ends_the_loop_for_the_caller(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(tool_calls=[ToolCall("Lookup", {"word": "spoon"})]), times=1)
    tools = Tools()
    response = await make_manager("openai").chat("Define spoon", tools=[tools.total, Lookup], run_tools=True)
    assert response.tool_calls[0].parse(Lookup) == Lookup(word="spoon")
    assert response.messages is not None and response.messages[-1].role == "assistant"


async def test_python_tools_without_run_tools_are_described_only(sim: ProviderSimulator, make_manager: Any) -> None:
    tools = Tools()
    sim.script("openai", Reply(tool_calls=[ToolCall("total", {"values": [1]})]), times=1)
    manager = make_manager("openai")
    response = await manager.chat("Add", tools=[tools.total, Lookup])
    assert response.tool_calls[0].name == "total" and not tools.sync_threads
    sent = sim.last_request("openai").body["tools"]
    assert [t["function"]["name"] for t in sent] == ["total", "Lookup"]
    # chat_with_tools accepts them too.
    sim.script("openai", Reply(text="hi"), times=1)
    assert (await manager.chat_with_tools("Hi", [tools.total])).content == "hi"
    assert sim.last_request("openai").body["tools"][0]["function"]["name"] == "total"


async def test_run_tools_needs_python_functions(make_manager: Any) -> None:
    with pytest.raises(ValidationError, match="run_tools=True needs tools"):
        await make_manager("openai").chat("Go", tools=[{"name": "x"}], run_tools=True)
    with pytest.raises(ValidationError, match="max_turns"):
        await make_manager("openai").chat("Go", max_turns=2)


async def test_messages_given_as_dicts_and_messages(sim: ProviderSimulator, make_manager: Any) -> None:
    tools = Tools()
    sim.script("openai", Reply(tool_calls=[ToolCall("total", {"values": [4]})]), times=1)
    sim.script("openai", Reply(text="4"), times=1)
    response = await make_manager("openai").chat(
        [{"role": "system", "content": "Be brief."}, Message.user("Add 4")], tools=[tools.total], run_tools=True)
    assert response.messages is not None and response.messages[0].role == "system"
