"""The README's "Testing your application offline" example, run as written (with a concrete tool list)."""

from spoon_llm import ConfigurationManager, LLMManager
from spoon_llm.testing import Fault, ProviderSimulator, Reply, ToolCall

TOOLS = [{"name": "search", "description": "Search", "parameters": {"type": "object",
                                                                      "properties": {"q": {"type": "string"}}}}]


async def test_my_agent_survives_an_outage():
    async with ProviderSimulator() as sim:
        config = ConfigurationManager({"providers": {
            "openai": {"api_key": "sk-test", "base_url": sim.openai_base_url, "model": "gpt-4.1-mini"},
            "anthropic": {"api_key": "sk-test", "base_url": sim.anthropic_base_url}},
            "fallback_chain": ["openai", "anthropic"]}, env={})
        sim.fault("openai", Fault.unavailable(), times=None)
        sim.script("anthropic", Reply(tool_calls=[ToolCall("search", {"q": "spoons"})]))
        async with LLMManager(config) as manager:
            response = await manager.chat("find spoons", tools=TOOLS)
        assert response.provider == "anthropic" and response.tool_calls[0].name == "search"
        assert sim.last_request("anthropic").body["tools"]
