"""The older import paths, ``LLMFactory`` and ``LLMBase`` after ``spoon_ai.llm`` -> ``spoon_llm``."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import pytest

from spoon_llm.testing import ProviderSimulator

from .conftest import KEY

OLDER_IMPORTS = {
    "spoon_llm": ["get_global_registry", "register_provider", "ProviderCapability", "ProviderMetadata",
                  "LLMProviderInterface", "LLMResponse", "ConfigurationManager", "LLMManager", "get_debug_logger",
                  "get_metrics_collector", "LLMFactory", "LLMError", "ProviderError", "ConfigurationError",
                  "RateLimitError", "AuthenticationError", "ModelNotFoundError", "TokenLimitError", "NetworkError"],
    "spoon_llm.providers.openai_compatible_provider": ["OpenAICompatibleProvider"],
    "spoon_llm.providers.openai_provider": ["OpenAIProvider"],
    "spoon_llm.interface": ["LLMProviderInterface"],
    "spoon_llm.factory": ["LLMFactory"],
    "spoon_llm.base": ["LLMBase"],
    "spoon_llm.monitoring": ["HealthMonitor", "get_debug_logger", "get_metrics_collector"],
    "spoon_llm.config": ["validate_model", "ConfigurationManager"],
    "spoon_llm.schema": ["Message"],
}


@pytest.mark.parametrize("module", sorted(OLDER_IMPORTS))
def test_every_older_import_resolves(module):
    loaded = importlib.import_module(module)
    for name in OLDER_IMPORTS[module]:
        assert getattr(loaded, name) is not None, f"from {module} import {name}"


def test_llm_factory_chat_returns_the_reply_text(thread_sim: ProviderSimulator):
    from spoon_llm import LLMFactory

    with pytest.warns(DeprecationWarning, match="LLMManager"):
        import spoon_llm.factory as factory

        factory._warned = False  # the warning is once per process
        llm = LLMFactory.create("openai", api_key=KEY, base_url=thread_sim.openai_base_url, model="gpt-4o-mini")
    try:
        assert llm.chat("Hello") == "Simulated reply to: Hello"
    finally:
        llm.close()
    assert thread_sim.last_request("openai").body["model"] == "gpt-4o-mini"


async def test_llm_base_is_awaitable_inside_a_loop(sim: ProviderSimulator):
    import warnings

    from spoon_llm import LLMFactory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        llm = LLMFactory.create("openai", api_key=KEY, base_url=sim.openai_base_url, model="gpt-4o-mini")
    try:
        reply = await llm.chat("Hello")
        assert reply == "Simulated reply to: Hello"
        assert await llm.completion("Once") == "Simulated reply to: Once"
    finally:
        await llm.manager.cleanup()
    assert sim.request_count == 2


def test_llm_factory_settings_reach_the_default_provider(thread_sim: ProviderSimulator, tmp_path: Path) -> None:
    from spoon_llm import ConfigurationManager, LLMFactory
    from spoon_llm.errors import ConfigurationError

    path = tmp_path / "spoon_llm.toml"
    path.write_text(f'[providers.openai]\napi_key = "{KEY}"\nbase_url = "{thread_sim.openai_base_url}"\n'
                    'model = "gpt-4o-mini"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        llm = LLMFactory.create(config=str(path), model="gpt-4o", max_tokens=5)
        try:
            llm.chat("Hello")
        finally:
            llm.close()
        sent = thread_sim.last_request("openai").body
        assert (sent["model"], sent["max_tokens"]) == ("gpt-4o", 5)
        with pytest.raises(ConfigurationError, match="cannot apply max_tokens"):
            LLMFactory.create("openai", config=ConfigurationManager(path), max_tokens=5)
