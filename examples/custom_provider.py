"""A provider of your own for any OpenAI-compatible server, written the way the older README showed.

Run: python examples/custom_provider.py   (served by the local simulator)
"""

import asyncio
from typing import Any

from spoon_llm import LLMManager, ProviderCapability, ProviderMetadata, register_provider
from spoon_llm.config import ConfigurationManager
from spoon_llm.providers.openai_compatible_provider import OpenAICompatibleProvider
from spoon_llm.testing import ProviderSimulator


@register_provider("acme", capabilities=[ProviderCapability.CHAT, ProviderCapability.STREAMING])
class AcmeProvider(OpenAICompatibleProvider):
    """ACME's hosted models speak the OpenAI protocol and want a tenant header."""

    provider_name = "acme"
    default_base_url = "https://llm.acme.example/v1"
    default_model = "acme-large"

    def get_additional_headers(self, config: Any) -> dict[str, str]:
        return {"X-Acme-Tenant": "research"}

    def get_metadata(self) -> ProviderMetadata:
        return ProviderMetadata(name="acme", capabilities=[ProviderCapability.CHAT, ProviderCapability.STREAMING],
                                max_tokens=32_000, available_models=["acme-large", "acme-small"])


async def main() -> None:
    async with ProviderSimulator() as sim:
        config = ConfigurationManager({"providers": {"acme": {"api_key": "acme-key", "base_url": sim.openai_base_url}}})
        async with LLMManager(config) as manager:
            response = await manager.chat("Hi ACME", provider="acme")
            print(response.content, "| model:", response.model)
            print("tenant header sent:", sim.last_request("openai").headers["x-acme-tenant"])


if __name__ == "__main__":
    asyncio.run(main())
