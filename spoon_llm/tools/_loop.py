"""``run_tools=True``: call the model, run the tools it asked for, feed the results back, until it answers.

Each turn is one ordinary ``manager.chat`` (so budgets, rate limits, the cache and fallback apply per turn). The
calls of one turn run concurrently: coroutine functions are awaited, plain functions run in worker threads. A tool
that raises is reported to the model as an error result (``tool_errors="return"``, the default), stops the loop
with :class:`~spoon_llm.errors.ToolExecutionError` (``"raise"``), or is described by a callable of yours
(``tool_errors=lambda exc, call: "..."``). Arguments that do not validate are always reported back, so the model
can correct them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import MaxTurnsExceededError, OutputValidationError, ToolExecutionError, ValidationError
from ..structured._parse import feedback, parse_response
from ..structured._turns import Turns
from ..types import LLMResponse, Message, ToolCall, ToolSpec, to_messages
from ._function import FunctionTool

if TYPE_CHECKING:
    from ..manager import LLMManager
    from ..structured._schema import OutputSchema

__all__ = ["ToolErrors", "run_tool_loop"]

ToolErrors = Any  # "return" | "raise" | Callable[[BaseException, ToolCall], str]


def check_tool_errors(value: Any) -> None:
    """Reject a ``tool_errors`` setting that is neither ``"return"``, ``"raise"`` nor a callable."""
    if value not in ("return", "raise") and not callable(value):
        raise ValidationError(f"tool_errors={value!r}: use 'return' (report the error to the model), 'raise' "
                              "(stop with ToolExecutionError) or a callable (exception, call) -> str")


def _result_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    import pydantic_core

    return pydantic_core.to_json(value, fallback=str).decode()


async def _run_call(call: ToolCall, tools: dict[str, FunctionTool], tool_errors: ToolErrors,
                    conversation: Sequence[Message]) -> str:
    """One call's result as the text sent back to the model."""
    found = tools.get(call.name)
    if found is None:
        return f"Error: there is no tool named {call.name!r}; available: {', '.join(sorted(tools))}"
    try:
        found.validate(call)
    except (OutputValidationError, ValueError) as exc:
        errors = getattr(exc, "errors", None) or [str(exc)]
        return "Error: invalid arguments: " + json.dumps(errors, default=str)
    try:
        return _result_text(await found.run(call))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if tool_errors == "raise":
            raise ToolExecutionError(f"tool {call.name!r} raised {type(exc).__name__}: {exc}", tool_name=call.name,
                                     arguments=call.function.arguments, messages=conversation) from exc
        if callable(tool_errors):
            return str(tool_errors(exc, call))
        return f"Error: {type(exc).__name__}: {exc}"


async def _run_all(calls: list[ToolCall], tools: dict[str, FunctionTool], tool_errors: ToolErrors,
                   conversation: Sequence[Message]) -> list[str]:
    """Every call of one turn, concurrently; if one stops the loop, the others are cancelled and awaited."""
    if len(calls) == 1:
        return [await _run_call(calls[0], tools, tool_errors, conversation)]
    tasks = [asyncio.ensure_future(_run_call(c, tools, tool_errors, conversation)) for c in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _with_ids(response: LLMResponse, turn: int) -> list[ToolCall]:
    # A tool result must name the call it answers; a vendor that sent no id gets a stable one.
    calls = list(response.tool_calls)
    if all(c.id for c in calls):
        return calls
    fixed = [c if c.id else c.model_copy(update={"id": f"call_{turn}_{i}"}) for i, c in enumerate(calls)]
    response.tool_calls = fixed
    return fixed


async def run_tool_loop(
    manager: LLMManager,
    messages: Any,
    tools: Sequence[FunctionTool | ToolSpec],
    *,
    schema: OutputSchema | None,
    output_retries: int,
    max_turns: int,
    tool_errors: ToolErrors,
    call: dict[str, Any],
) -> LLMResponse:
    """Run the conversation to a final answer; see the module docstring."""
    conversation = to_messages(messages)
    runnable = {t.name: t for t in tools if isinstance(t, FunctionTool) and t.runnable}
    specs = [t.spec if isinstance(t, FunctionTool) else t for t in tools]
    turns = Turns()
    for turn in range(max_turns):
        turn_call: dict[str, Any] = {**call, "tools": specs}
        if schema is not None:
            turn_call["response_format"] = schema
        response = await manager.chat(list(conversation), **turn_call)
        turns.add(response)
        calls = _with_ids(response, turn) if response.tool_calls else []
        conversation.append(response.to_message())
        if calls:
            if any(c.name not in runnable and c.name in {s.name for s in specs} for c in calls):
                # A described-only tool (a pydantic model): its call is the answer, for the caller to parse.
                return turns.combined(messages=conversation)
            results = await _run_all(calls, runnable, tool_errors, conversation)
            conversation.extend(Message.tool(c.id or "", text, name=c.name) for c, text in zip(calls, results,
                                                                                                 strict=True))
            continue
        if schema is None:
            return turns.combined(messages=conversation)
        try:
            parsed = parse_response(schema, response)
        except OutputValidationError as exc:
            turns.mark_failed("OutputValidationError")
            if response.refusal or turns.reasks >= output_retries:
                exc.response = turns.combined(messages=conversation)
                raise
            turns.reasks += 1
            conversation.append(Message.user(feedback(exc)))
            continue
        return turns.combined(messages=conversation, parsed=parsed)
    last = turns.combined(messages=conversation)
    raise MaxTurnsExceededError(
        f"the model still asked for tools after max_turns={max_turns} turns; raise max_turns or check the tools' "
        "results (the conversation so far is in .messages)",
        messages=conversation, response=last, usage=last.usage, cost=last.cost, max_turns=max_turns)


def split_tools(given: Sequence[Any] | None) -> list[FunctionTool | ToolSpec]:
    """The caller's tools as :class:`FunctionTool` (Python) or :class:`ToolSpec` (already described)."""
    from ._function import as_tool

    return [as_tool(t) for t in given or ()]


def specs_of(tools: Sequence[FunctionTool | ToolSpec]) -> list[ToolSpec]:
    """What is sent: every tool's :class:`ToolSpec`."""
    return [t.spec if isinstance(t, FunctionTool) else t for t in tools]

