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
import re
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

#: The tool names every vendor accepts (OpenAI's and Anthropic's rule; Gemini's is wider).
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


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
        try:
            return str(dump())
        except ValueError:  # e.g. bytes that are not UTF-8: serialised below
            pass
    import pydantic_core

    # Bytes as text when they are UTF-8, else base64 (an image, a hash): a result that ran is never lost.
    for bytes_mode in ("utf8", "base64"):
        try:
            return pydantic_core.to_json(value, fallback=str, bytes_mode=bytes_mode).decode()
        except ValueError:  # PydanticSerializationError (also a circular reference)
            continue
    return repr(value)


def _cancelling() -> bool:
    """Whether the running task has been asked to cancel (as opposed to a tool raising CancelledError itself)."""
    task = asyncio.current_task()
    if task is None:
        return False
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return bool(cancelling()) if cancelling is not None else True


def _failed(exc: BaseException, call: ToolCall, tool_errors: ToolErrors, conversation: Sequence[Message]) -> str:
    """The result text for a tool that raised ``exc`` (or the error that stops the loop)."""
    if tool_errors == "raise":
        raise ToolExecutionError(f"tool {call.name!r} raised {type(exc).__name__}: {exc}", tool_name=call.name,
                                 arguments=call.function.arguments, messages=conversation) from exc
    if callable(tool_errors):
        return str(tool_errors(exc, call))
    return f"Error: {type(exc).__name__}: {exc}"


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
        value = await found.run(call)
    except asyncio.CancelledError as exc:
        if _cancelling():
            raise
        # Raised by the tool itself (an inner awaitable cancelled by someone else): the tool failed.
        return _failed(exc, call, tool_errors, conversation)
    except Exception as exc:
        return _failed(exc, call, tool_errors, conversation)
    # Outside the handler above: the tool ran, so a result that is hard to serialise is not its failure.
    return _result_text(value)


async def _run_all(calls: list[ToolCall], tools: dict[str, FunctionTool], tool_errors: ToolErrors,
                   conversation: Sequence[Message]) -> list[str]:
    """Every call of one turn, concurrently; if one stops the loop, the others are cancelled and awaited."""
    if len(calls) == 1:
        return [await _run_call(calls[0], tools, tool_errors, conversation)]
    tasks = [asyncio.ensure_future(_run_call(c, tools, tool_errors, conversation)) for c in calls]
    try:
        # Not gather: a call's task that ends cancelled while this task is not must not cancel the whole turn.
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled():
                task.result()  # raises the error that stops the loop (the others are then cancelled below)
        results: list[str] = []
        for call, task in zip(calls, tasks, strict=True):
            if task.cancelled():  # only this task cancels them, and it was not: the tool cancelled itself
                results.append(_failed(asyncio.CancelledError(), call, tool_errors, conversation))
            else:
                results.append(task.result())
        return results
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
    tool_turns = 0  # max_turns bounds these; re-asks are bounded by output_retries
    while tool_turns < max_turns:
        turn_call: dict[str, Any] = {**call, "tools": specs}
        if turns.responses:
            # A forced choice ("required", a named tool) holds for the first turn only, else no turn could answer.
            turn_call.pop("tool_choice", None)
        if schema is not None:
            turn_call["response_format"] = schema
        response = await manager.chat(list(conversation), **turn_call)
        turns.add(response)
        calls = _with_ids(response, len(turns.responses) - 1) if response.tool_calls else []
        conversation.append(response.to_message())
        if calls:
            if any(c.name not in runnable and c.name in {s.name for s in specs} for c in calls):
                # A described-only tool (a pydantic model): its call is the answer, for the caller to parse.
                return turns.combined(messages=conversation)
            results = await _run_all(calls, runnable, tool_errors, conversation)
            conversation.extend(Message.tool(c.id or "", text, name=c.name) for c, text in zip(calls, results,
                                                                                                 strict=True))
            tool_turns += 1
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
    """The caller's tools as :class:`FunctionTool` (Python) or :class:`ToolSpec` (already described).

    Raises :class:`ValidationError` for a name taken from Python that no vendor accepts (a lambda) and for two
    tools of the same name (the model could not tell them apart; only one would run).
    """
    from ._function import as_tool

    tools = [as_tool(t) for t in given or ()]
    seen: set[str] = set()
    for item in tools:
        name = item.name
        if isinstance(item, FunctionTool) and not _TOOL_NAME.fullmatch(name):
            raise ValidationError(f"tool name {name!r}: a tool's name must match ^[a-zA-Z0-9_-]{{1,64}}$; name it "
                                  "with spoon_llm.tools.tool(fn, name=...)")
        if name in seen:
            raise ValidationError(f"two tools are named {name!r}; rename one with spoon_llm.tools.tool(fn, name=...)")
        seen.add(name)
    return tools


def specs_of(tools: Sequence[FunctionTool | ToolSpec]) -> list[ToolSpec]:
    """What is sent: every tool's :class:`ToolSpec`."""
    return [t.spec if isinstance(t, FunctionTool) else t for t in tools]

