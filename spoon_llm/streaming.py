"""Folding a stream of chunks back into one answer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable

from .errors import ResponseParsingError
from .types import LLMResponse, LLMResponseChunk

__all__ = ["collect_stream"]


async def collect_stream(stream: AsyncIterable[LLMResponseChunk]) -> LLMResponse:
    """Consume a stream (from a provider's or the manager's ``chat_stream``) and return it as one response.

    The text, tool calls, usage and finish reason come from the last chunk, the reasoning from every reasoning
    delta; ``duration`` is the time the stream took to be consumed.

    Example::

        response = await collect_stream(manager.chat_stream("Tell me a story"))
    """
    start = time.perf_counter()
    final: LLMResponseChunk | None = None
    reasoning: list[str] = []
    async for chunk in stream:
        if chunk.reasoning_delta:
            reasoning.append(chunk.reasoning_delta)
        final = chunk
    if final is None:
        raise ResponseParsingError("the stream ended without any chunk")
    return LLMResponse(
        content=final.content, provider=final.provider, model=final.model, finish_reason=final.finish_reason,
        native_finish_reason=final.native_finish_reason, tool_calls=final.tool_calls, usage=final.usage,
        reasoning="".join(reasoning) or None, refusal=final.metadata.get("refusal"), metadata=final.metadata,
        request_id=final.request_id, duration=time.perf_counter() - start,
    )
