"""``azure-identity`` is optional: neither ``import spoon_llm`` nor an api-key Azure deployment loads it."""

from __future__ import annotations

import json
import subprocess
import sys

from spoon_llm.testing import ProviderSimulator


def test_azure_identity_loads_only_for_entra_id(sim: ProviderSimulator) -> None:
    code = (
        "import asyncio, json, sys, spoon_llm\n"
        "from spoon_llm.providers.azure import AzureOpenAIProvider\n"
        "async def main():\n"
        "    provider = AzureOpenAIProvider()\n"
        f"    await provider.initialize({{'api_key': 'k-123456789', 'base_url': {sim.azure_endpoint!r},"
        " 'model': 'gpt-4o'})\n"
        "    await provider.chat('hi')\n"
        "    await provider.cleanup()\n"
        "asyncio.run(main())\n"
        "print(json.dumps([m for m in ('azure.identity', 'azure.core', 'msal') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert sim.last_request("azure").path == "/openai/deployments/gpt-4o/chat/completions"
