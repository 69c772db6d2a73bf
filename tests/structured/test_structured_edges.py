"""Edges of typed output and tools through the simulator: recursive and bare schemas, replies that mix text and
tool calls, tools pydantic cannot describe, tool names, cancellation, serialisation, and the settings of the tool
loop (tool_choice, max_turns, a plain response_format) and of streams."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import socket
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from spoon_llm import ConfigurationManager, ValidationError
from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator, Reply, ToolCall


class Answer(BaseModel):
    total: int


class Node(BaseModel):
    """A tree."""

    name: str
    children: list[Node] = []


class Employee(BaseModel):
    name: str
    reports: list[Annotated[Employee, Field(description="A direct report")]] = []


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def get_weather(city: str) -> dict[str, int]:
    """Current weather in a city."""
    return {"t": 21}


# Every reference to Node carries a description: strict mode wants those inlined, which must stop somewhere.
TREE_SCHEMA: dict[str, Any] = {
    "type": "object", "title": "Tree",
    "properties": {"root": {"$ref": "#/$defs/Node", "description": "The root"}},
    "required": ["root"],
    "$defs": {"Node": {"type": "object", "required": ["name", "children"], "properties": {
        "name": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#/$defs/Node", "description": "A child"}}}}},
}


def _tool_results(messages: list[Any]) -> list[str]:
    return [m.text for m in messages if m.role == "tool"]


@pytest.mark.parametrize(("response_format", "answer", "expected"), [
    (TREE_SCHEMA, '{"root": {"name": "a", "children": []}}', {"root": {"name": "a", "children": []}}),
    (Employee, '{"name": "a", "reports": [{"name": "b", "reports": []}]}',
     Employee(name="a", reports=[Employee(name="b")])),
], ids=["json-schema", "pydantic"])
async def test_described_recursive_reference_reaches_openai(sim: ProviderSimulator, make_manager: Any,
                                                            response_format: Any, answer: str,
                                                            expected: Any) -> None:
    sim.script("openai", Reply(text=answer))
    response = await make_manager("openai").chat("Tree?", response_format=response_format)
    assert response.parsed == expected
    sent = sim.last_request("openai").body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["strict"] is True  # converted, not given up on


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_typed_reply_with_text_and_tool_call_is_returned_unparsed(sim: ProviderSimulator,
                                                                        make_manager: Any, vendor: str) -> None:
    reply = Reply(text="Let me check the weather.", tool_calls=[ToolCall("get_weather", {"city": "Paris"})])
    sim.script(vendor, reply, times=2)
    manager = make_manager(vendor)
    response = await manager.chat("Weather?", tools=[get_weather], response_format=Answer, output_retries=1)
    assert [c.name for c in response.tool_calls] == ["get_weather"]
    assert response.parsed is None
    assert len(sim.requests_for(vendor)) == 1  # no re-ask: the caller runs the tool

    final = None
    async for chunk in manager.chat_stream("Weather?", tools=[get_weather], response_format=Answer):
        final = chunk
    assert final is not None and final.kind == "final"
    assert [c.name for c in final.tool_calls] == ["get_weather"]
    assert final.parsed is None


def _takes_socket(connection: socket.socket) -> str:
    """Uses a socket."""
    return "x"


class _SocketArgs(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    connection: socket.socket


@pytest.mark.parametrize(("tool", "name"), [(_takes_socket, "_takes_socket"), (_SocketArgs, "_SocketArgs")])
async def test_tool_pydantic_cannot_describe_is_a_validation_error(sim: ProviderSimulator, make_manager: Any,
                                                                   tool: Any, name: str) -> None:
    with pytest.raises(ValidationError, match=f"tool '{name}'"):
        await make_manager("openai").chat("hi", tools=[tool])
    assert sim.requests_for("openai") == []


class Doubler:
    """A callable object that cannot be hashed."""

    __hash__ = None  # type: ignore[assignment]

    def __call__(self, x: int) -> int:
        """Double a number."""
        return 2 * x


async def test_unhashable_callable_tool_is_described(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(tool_calls=[ToolCall("Doubler", {"x": 4})]), times=1)
    sim.script("openai", Reply(text="8"), times=1)
    response = await make_manager("openai").chat("Double 4", tools=[Doubler()], run_tools=True)
    assert response.content == "8"
    assert _tool_results(response.messages) == ["8"]
    sent = sim.requests_for("openai")[0].body["tools"][0]["function"]
    assert sent["name"] == "Doubler" and sent["parameters"]["properties"]["x"]["type"] == "integer"


async def cancels_itself(x: int) -> int:
    """A tool whose inner awaitable was cancelled by someone else."""
    future = asyncio.get_running_loop().create_future()
    future.cancel()
    result: int = await future  # raises CancelledError here, in a task nobody cancelled
    return result


async def cancels_its_task(x: int) -> int:
    """A tool that cancels the task it runs in (in a turn of parallel calls, its own, not the caller's)."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    await asyncio.sleep(0)
    return x


async def echo(x: int) -> int:
    """Return x."""
    return x


@pytest.mark.parametrize("calls", [
    [ToolCall("cancels_itself", {"x": 1})],
    [ToolCall("cancels_itself", {"x": 1}), ToolCall("echo", {"x": 2})],
    [ToolCall("cancels_its_task", {"x": 1}), ToolCall("echo", {"x": 2})],
], ids=["one-call", "parallel-calls", "parallel-own-task"])
async def test_tool_raising_cancelled_error_is_a_tool_error(sim: ProviderSimulator, make_manager: Any,
                                                            calls: list[ToolCall]) -> None:
    sim.script("openai", Reply(tool_calls=calls), times=1)
    sim.script("openai", Reply(text="done"), times=1)
    response = await make_manager("openai").chat("go", tools=[cancels_itself, cancels_its_task, echo],
                                                 run_tools=True)
    assert response.content == "done"
    results = _tool_results(response.messages)
    assert results[0].startswith("Error: CancelledError")
    assert results[1:] == ["2"][:len(calls) - 1]


@pytest.mark.parametrize("parallel", [False, True], ids=["one-call", "parallel-calls"])
async def test_cancelling_the_caller_still_cancels_running_tools(sim: ProviderSimulator, make_manager: Any,
                                                                 parallel: bool) -> None:
    started: list[str] = []
    cancelled: list[str] = []
    all_started = asyncio.Event()
    expected = 2 if parallel else 1

    async def block(key: str) -> str:
        """Wait until cancelled."""
        started.append(key)
        if len(started) == expected:
            all_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(key)
            raise
        return key

    calls = [ToolCall("block", {"key": k}) for k in ("a", "b")[:expected]]
    sim.script("openai", Reply(tool_calls=calls), times=1)
    request = asyncio.ensure_future(make_manager("openai").chat("go", tools=[block], run_tools=True))
    await all_started.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert sorted(cancelled) == sorted(started)


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "gemini"])
async def test_bare_json_schema_with_array_root_is_typed(sim: ProviderSimulator, make_manager: Any,
                                                         vendor: str) -> None:
    sim.script(vendor, Reply(text='{"result": [1, 2]}'))
    response = await make_manager(vendor).chat("Numbers?", response_format={"type": "array",
                                                                             "items": {"type": "integer"}})
    assert response.parsed == [1, 2]
    body = sim.last_request(vendor).body
    if vendor == "openai":
        assert body["response_format"]["type"] == "json_schema"
    elif vendor == "anthropic":
        assert body["output_config"]["format"]["type"] == "json_schema"
    else:
        assert "responseJsonSchema" in body["generationConfig"]


async def test_recursive_model_tool_has_an_object_root(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(text="ok"))
    await make_manager("openai").chat("hi", tools=[Node])
    function = sim.last_request("openai").body["tools"][0]["function"]
    parameters = function["parameters"]
    assert parameters["type"] == "object"
    assert set(parameters["properties"]) == {"name", "children"}
    assert parameters["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert "Node" in parameters["$defs"]  # the reference inside still resolves
    assert function["description"] == "A tree."


async def test_run_tools_keeps_a_plain_response_format(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(text='{"sum": 3}'), times=1)
    response = await make_manager("openai").chat("1+2 as JSON", tools=[add], run_tools=True,
                                                 response_format={"type": "json_object"})
    assert response.content == '{"sum": 3}'
    assert sim.last_request("openai").body["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(("vendor", "choice", "sent"), [
    ("openai", "required", "required"),
    ("openai", {"type": "function", "function": {"name": "add"}}, {"type": "function", "function": {"name": "add"}}),
    ("anthropic", "required", {"type": "any"}),
], ids=["openai-required", "openai-named", "anthropic-required"])
async def test_forced_tool_choice_applies_to_the_first_turn_only(sim: ProviderSimulator, make_manager: Any,
                                                                 vendor: str, choice: Any, sent: Any) -> None:
    # Unscripted, the simulator obeys a forced choice as the real APIs do: it calls add.
    response = await make_manager(vendor).chat("1+2?", tools=[add], run_tools=True, max_turns=4,
                                               tool_choice=choice)
    assert not response.tool_calls
    assert [r.body.get("tool_choice") for r in sim.requests_for(vendor)] == [sent, None]


async def test_output_reasks_do_not_use_up_max_turns(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(text='{"total": "three"}'), times=1)
    sim.script("openai", Reply(text='{"total": 3}'), times=1)
    response = await make_manager("openai").chat("1+2?", tools=[add], run_tools=True, max_turns=1,
                                                 response_format=Answer, output_retries=1)
    assert response.parsed == Answer(total=3)
    assert len(sim.requests_for("openai")) == 2


async def test_stream_rejects_each_setting_of_the_tool_loop(sim: ProviderSimulator, make_manager: Any) -> None:
    manager = make_manager("openai")
    for key, call in (("max_turns", {"max_turns": 3}), ("tool_errors", {"tool_errors": "raise", "tools": [add]}),
                      ("run_tools", {"run_tools": True, "tools": [add]}),
                      ("output_retries", {"output_retries": 1, "response_format": Answer})):
        with pytest.raises(ValidationError, match=key):
            async for _ in manager.chat_stream("hi", **call):
                pass
    assert sim.requests_for("openai") == []


PNG = b"\x89PNG\r\n\x1a\n\xff"


def snapshot(name: str) -> dict[str, Any]:
    """Take a snapshot and return its bytes."""
    return {"name": name, "png": PNG}


async def test_tool_returning_binary_bytes_is_not_a_failure(sim: ProviderSimulator, make_manager: Any) -> None:
    sim.script("openai", Reply(tool_calls=[ToolCall("snapshot", {"name": "a"})]), times=1)
    sim.script("openai", Reply(text="done"), times=1)
    response = await make_manager("openai").chat("go", tools=[snapshot], run_tools=True, tool_errors="raise")
    assert response.content == "done"
    (result,) = _tool_results(response.messages)
    sent = json.loads(result)
    assert sent["name"] == "a"
    assert base64.urlsafe_b64decode(sent["png"] + "=" * (-len(sent["png"]) % 4)) == PNG


def _search_in(source: str) -> Any:
    def search(query: str) -> str:
        """Search."""
        return f"{source}:{query}"

    return search


def scale(x: int, factor: float) -> float:
    """Scale a number.

    Args:
        x: The number.
        factor: The multiplier.
    """
    return x * factor


async def test_tool_names_are_checked_and_partials_described(sim: ProviderSimulator, make_manager: Any) -> None:
    manager = make_manager("openai")
    with pytest.raises(ValidationError, match="<lambda>"):
        await manager.chat("hi", tools=[lambda x: x])
    with pytest.raises(ValidationError, match="two tools are named 'search'"):
        await manager.chat("hi", tools=[_search_in("web"), _search_in("docs")], run_tools=True)
    assert sim.requests_for("openai") == []

    sim.script("openai", Reply(text="ok"), times=1)
    await manager.chat("hi", tools=[functools.partial(scale, factor=2.0)])
    function = sim.last_request("openai").body["tools"][0]["function"]
    assert function["name"] == "scale"
    assert function["description"] == "Scale a number."
    assert function["parameters"]["properties"]["x"] == {"type": "integer", "description": "The number."}
    assert function["parameters"]["required"] == ["x"]


async def test_strict_simulator_accepts_anthropic_output_config() -> None:
    async with ProviderSimulator(strict=True) as strict:
        section = {"type": "anthropic", "api_key": "sk-ant-test-xxxxxxxxxxxxxxxx0002", "model": "claude-sonnet-4-5",
                   "base_url": strict.anthropic_base_url}
        config = ConfigurationManager({"providers": {"anthropic": section}, "retry": {"max_retries": 0}}, env={})
        async with LLMManager(config) as manager:
            strict.script("anthropic", Reply(text='{"total": 3}'))
            response = await manager.chat("1+2?", response_format=Answer)
    assert response.parsed == Answer(total=3)
    assert "output_config" in strict.last_request("anthropic").body


async def test_run_tools_must_be_a_boolean(sim: ProviderSimulator, make_manager: Any) -> None:
    manager = make_manager("openai")

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    with pytest.raises(ValidationError, match="run_tools must be True or False"):
        await manager.chat("hi", tools=[add], run_tools="no")
    assert sim.request_count == 0
