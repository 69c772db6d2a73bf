"""An offline tour of spoon-llm: real HTTP over real sockets, a local provider simulator instead of the vendors.

Run it with ``spoon-llm demo`` (or ``python -m spoon_llm.demo``). It starts the simulator on 127.0.0.1, points
OpenAI, Anthropic and Gemini providers at it, and shows chat, streaming, tool calls, a fallback after injected
503s, a rate limit honoured, and a concurrent batch — with the usage and the attempt trace of each answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .config import ConfigurationManager
from .manager import LLMManager
from .testing import Fault, ProviderSimulator, Reply, ToolCall

__all__ = ["main", "run_demo"]

_KEY = "demo-key-not-a-secret"


def _config(sim: ProviderSimulator) -> ConfigurationManager:
    return ConfigurationManager(
        {
            "default_provider": "openai",
            "fallback_chain": ["openai", "anthropic", "gemini"],
            "retry": {"max_retries": 2, "initial_backoff": 0.05},
            "providers": {
                "openai": {"api_key": _KEY, "base_url": sim.openai_base_url, "model": "gpt-4.1-mini"},
                "anthropic": {"api_key": _KEY, "base_url": sim.anthropic_base_url, "model": "claude-sonnet-4-6"},
                "gemini": {"api_key": _KEY, "base_url": sim.gemini_base_url, "model": "gemini-2.5-flash"},
            },
            "models": {"smart": "anthropic/claude-sonnet-4-6", "fast": "gemini/gemini-2.5-flash"},
        },
        env={},
    )


async def run_demo(say: Callable[[str], Any] = print) -> None:
    """Run every step of the tour, printing with ``say``."""
    async with ProviderSimulator() as sim:
        async with LLMManager(_config(sim)) as manager:
            say("1. chat through the default provider (OpenAI wire format)")
            response = await manager.chat([{"role": "user", "content": "Say hello in five words"}])
            say(f"   {response.provider}/{response.model}: {response.content!r}")
            usage = response.usage
            if usage is not None:
                say(f"   usage: {usage.input_tokens} in, {usage.output_tokens} out; finish: {response.finish_reason}")

            say("2. the same question to a model alias ('smart' -> Anthropic), streamed")
            pieces = []
            async for chunk in manager.chat_stream("Stream a short answer", model="smart"):
                pieces.append(chunk.delta)
            say(f"   {len(pieces)} chunks: {''.join(pieces)!r}")

            say("3. tool calling through Gemini")
            sim.script("gemini", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]), times=1)
            tools = [{"name": "get_weather", "description": "Current weather",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                     "required": ["city"]}}]
            response = await manager.chat_with_tools("Weather in Paris?", tools, model="fast")
            for call in response.tool_calls:
                say(f"   the model asked for {call.name}({call.arguments}); finish: {response.finish_reason}")

            say("4. OpenAI answers 503 three times: retries, then fallback to Anthropic")
            sim.fault("openai", Fault.unavailable(), times=3)
            response = await manager.chat("Are you there?")
            trace = ", ".join(f"{a.deployment}:{a.error_type or 'ok'}" for a in response.attempts)
            say(f"   answered by {response.provider}; attempts: {trace}")

            say("5. a 429 with Retry-After 1 s is waited for, then the same provider answers")
            sim.fault("openai", Fault.rate_limited(retry_after=1), times=1)
            started = time.perf_counter()
            response = await manager.chat("Again?")
            say(f"   answered by {response.provider} after {time.perf_counter() - started:.2f} s")

            say("6. a batch of 200 requests, 20 at a time, with 10% random 503s")
            sim.fault("openai", Fault.unavailable(), times=None, probability=0.1, seed=1)
            started = time.perf_counter()
            results = await manager.batch_chat([f"question {i}" for i in range(200)], concurrency=20)
            elapsed = time.perf_counter() - started
            stats = manager.get_stats()
            say(f"   {len(results)} answers in order in {elapsed:.2f} s; retries so far: {stats['retries']}, "
                f"fallbacks: {stats['fallbacks']}")
            sim.reset()
    say("done: every request went to the local simulator; no network was used.")


def main() -> None:
    """Entry point of ``spoon-llm demo``."""
    asyncio.run(run_demo())


if __name__ == "__main__":  # pragma: no cover
    main()
