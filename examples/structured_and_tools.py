"""Typed answers and tools from Python functions, against the local simulator.

Run: python examples/structured_and_tools.py   (no API key, no network: the simulator plays OpenAI)
"""

import asyncio
import json
from typing import Literal

from pydantic import BaseModel

from spoon_llm import ConfigurationManager, LLMManager
from spoon_llm.testing import ProviderSimulator, Reply, ToolCall


class City(BaseModel):
    name: str
    country: str
    population: int


async def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict[str, object]:
    """Current weather in a city.

    Args:
        city: The city name.
        unit: Temperature unit.
    """
    return {"city": city, "temperature": 21, "unit": unit}


async def main() -> None:
    async with ProviderSimulator() as sim:
        config = ConfigurationManager({"providers": {
            "openai": {"api_key": "sk-example", "base_url": sim.openai_base_url, "model": "gpt-4.1-mini"}}})
        async with LLMManager(config) as manager:
            # A typed answer: the first reply does not validate, the model is re-asked with the errors.
            sim.script("openai", Reply(text='{"name": "Tokyo", "country": "Japan"}'), times=1)
            sim.script("openai", Reply(text='{"name": "Tokyo", "country": "Japan", "population": 37400000}'),
                       times=1)
            response = await manager.chat("Largest city in Japan?", response_format=City, output_retries=1)
            city: City = response.parsed
            print(city, [a.error_type for a in response.attempts])

            # Tools from Python: the model asks for the weather, the function runs, the model answers.
            sim.script("openai", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]), times=1)
            sim.script("openai", Reply(text="It is 21 °C in Paris."), times=1)
            response = await manager.chat("Weather in Paris?", tools=[get_weather], run_tools=True, max_turns=3)
            print(response.content)
            print(json.dumps([m.model_dump(exclude_none=True) for m in response.messages or []], indent=1))


if __name__ == "__main__":
    asyncio.run(main())
