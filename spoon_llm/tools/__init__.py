"""Tools from Python: pass functions and pydantic models as ``tools=``, and optionally let the manager run them.

A function's parameters become the tool's JSON schema (type hints through pydantic: defaults, enums, ``Literal``,
nested models, optional parameters) and its docstring the descriptions (Google, NumPy or Sphinx style). A pydantic
model becomes a tool whose arguments are the model; read a call with ``call.parse(MyModel)``.

``manager.chat(..., tools=[f, g], run_tools=True, max_turns=5)`` runs the calls the model makes (coroutine
functions awaited, plain functions in worker threads, the calls of one turn concurrently), sends the results back
and returns the final answer with ``response.messages`` (the whole exchange) and the usage and cost of every turn.
A tool that raises is reported to the model as an error result (``tool_errors="return"``; ``"raise"`` stops with
:class:`~spoon_llm.errors.ToolExecutionError`, or pass a callable ``(exception, call) -> str``). Running out of
turns raises :class:`~spoon_llm.errors.MaxTurnsExceededError` carrying the conversation; ``max_turns`` counts the
turns that call tools (re-asks for a typed answer are bounded by ``output_retries``), and ``tool_choice`` applies
to the first turn only.

Example::

    async def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict:
        '''Current weather in a city.

Args:
            city: The city name.
            unit: Temperature unit.
        '''

    response = await manager.chat("Weather in Paris?", tools=[get_weather], run_tools=True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._function import FunctionTool, as_tool, tool

__all__ = ["FunctionTool", "as_tool", "tool"]

__getattr__, __dir__ = lazy_exports(__name__, globals(), {"FunctionTool": "._function", "as_tool": "._function",
                                                          "tool": "._function"})
