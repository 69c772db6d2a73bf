"""Quick start: one manager, two providers, chat, stream and tools, all against the local simulator.

Run: python examples/quickstart.py   (no API key, no network: the simulator plays OpenAI and Anthropic)
"""

import asyncio

from spoon_llm import ConfigurationManager, LLMManager
from spoon_llm.testing import ProviderSimulator, Reply, ToolCall


async def main() -> None:
    async with ProviderSimulator() as sim:
        config = ConfigurationManager({
            "default_provider": "openai",
            "fallback_chain": ["openai", "anthropic"],
            "providers": {
                "openai": {"api_key": "sk-example", "base_url": sim.openai_base_url, "model": "gpt-4.1-mini"},
                "anthropic": {"api_key": "sk-example", "base_url": sim.anthropic_base_url,
                              "model": "claude-sonnet-4-6"},
            },
            "models": {"sonnet": "anthropic/claude-sonnet-4-6"},
        })
        async with LLMManager(config) as manager:
            response = await manager.chat([{"role": "user", "content": "Hello!"}])
            print(f"{response.provider}: {response.content} ({response.usage.total_tokens} tokens)")

            async for chunk in manager.chat_stream("Tell me a story", model="sonnet"):
                print(chunk, end="")
            print()

            sim.script("openai", Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3})]), times=1)
            tools = [{"name": "add", "description": "Add two numbers",
                      "parameters": {"type": "object", "properties": {"a": {"type": "number"},
                                                                      "b": {"type": "number"}}}}]
            response = await manager.chat_with_tools("What is 2 + 3?", tools)
            call = response.tool_calls[0]
            print(f"tool call: {call.name}({call.arguments})")


if __name__ == "__main__":
    asyncio.run(main())
