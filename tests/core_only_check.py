"""Run with a core-only install (no extras): the package imports, configures, and names the extra an SDK needs."""

import asyncio
import sys

import spoon_llm
from spoon_llm import ConfigurationError, ConfigurationManager, get_global_registry


async def main() -> None:
    heavy = [m for m in ("openai", "anthropic", "google.genai", "fastapi", "redis") if m in sys.modules]
    assert not heavy, heavy
    config = ConfigurationManager({"providers": {"openai": {"api_key": "sk-core-only-check-000000"}}})
    assert config.get_default_provider() == "openai"
    registry = get_global_registry()
    assert "openai" in registry.list_providers()
    try:
        provider = await registry.get_initialized_provider("openai", config.load_provider_config("openai"))
    except ConfigurationError as exc:
        assert 'pip install "spoon-llm[native]"' in str(exc), str(exc)  # what the default transport needs
        assert 'pip install "spoon-llm[openai]"' in str(exc), str(exc)
    else:  # pragma: no cover - only when the openai SDK happens to be installed
        await provider.cleanup()
    print(f"core-only install OK (spoon-llm {spoon_llm.__version__})")


asyncio.run(main())
