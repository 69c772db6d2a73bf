"""Several keys of one provider take turns without ``load_balancing``; ``api_key`` precedence across sources.

Requests are counted per key at the simulator, which records the last four characters of each key.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from spoon_llm import ConfigurationManager, LLMManager
from spoon_llm.errors import ConfigurationError
from spoon_llm.testing import ProviderSimulator

KEYS = ["sk-settings-pool-key-aaaa", "sk-settings-pool-key-bbbb", "sk-settings-pool-key-cccc"]
ENV_KEY = "sk-settings-environment-eeee"
OVERRIDE_KEY = "sk-settings-explicit-key-xxxx"


def per_key(sim: ProviderSimulator, vendor: str = "openai") -> Counter[str]:
    return Counter((r.header("authorization") or r.header("x-api-key") or "")[-4:]
                   for r in sim.requests_for(vendor, "chat"))


async def send(config: ConfigurationManager, count: int, **kwargs: Any) -> None:
    async with LLMManager(config) as manager:
        for i in range(count):
            await manager.chat(f"request {i}", **kwargs)


async def test_keys_of_one_provider_take_turns_by_default(sim: ProviderSimulator) -> None:
    config = ConfigurationManager({"providers": {"openai": {
        "api_keys": KEYS, "base_url": sim.openai_base_url, "model": "gpt-4.1-mini"}}}, env={})
    assert config.config.load_balancing is None
    await send(config, 9)
    assert per_key(sim) == {"aaaa": 3, "bbbb": 3, "cccc": 3}


async def test_keys_take_turns_within_an_alias_and_its_other_provider_stays_the_fallback(
        sim: ProviderSimulator) -> None:
    config = ConfigurationManager({
        "providers": {"openai": {"api_keys": KEYS[:2], "base_url": sim.openai_base_url},
                      "anthropic": {"api_key": KEYS[2], "base_url": sim.anthropic_base_url}},
        "models": {"fast": ["openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5"]}}, env={})
    await send(config, 6, model="fast")
    assert per_key(sim) == {"aaaa": 3, "bbbb": 3}
    assert sim.requests_for("anthropic", "chat") == []


async def test_streams_take_turns_too(sim: ProviderSimulator) -> None:
    config = ConfigurationManager({"providers": {"openai": {
        "api_keys": KEYS[:2], "base_url": sim.openai_base_url, "model": "gpt-4.1-mini"}}}, env={})
    async with LLMManager(config) as manager:
        for i in range(4):
            async for _ in manager.chat_stream(f"stream {i}"):
                pass
    assert per_key(sim) == {"aaaa": 2, "bbbb": 2}


def write_pool(tmp_path: Path, sim: ProviderSimulator, keys: str) -> Path:
    path = tmp_path / "spoon_llm.toml"
    path.write_text(f'[providers.openai]\napi_keys = {keys}\nbase_url = "{sim.openai_base_url}"\n'
                    'model = "gpt-4.1-mini"\n')
    return path


async def test_the_environment_key_beats_the_files_pool(sim: ProviderSimulator, tmp_path: Path) -> None:
    path = write_pool(tmp_path, sim, f'["{KEYS[0]}", "{KEYS[1]}"]')
    config = ConfigurationManager(path, env={"OPENAI_API_KEY": ENV_KEY})
    assert [d.key_alias for d in config.config.providers["openai"].deployments()] == ["default"]
    await send(config, 3)
    assert per_key(sim) == {"eeee": 3}


async def test_a_pool_that_already_holds_the_environment_key_stays_a_pool(
        sim: ProviderSimulator, tmp_path: Path) -> None:
    path = write_pool(tmp_path, sim, f'["${{OPENAI_API_KEY}}", "{KEYS[1]}"]')
    await send(ConfigurationManager(path, env={"OPENAI_API_KEY": ENV_KEY}), 4)
    assert per_key(sim) == {"eeee": 2, "bbbb": 2}


async def test_the_file_pool_is_used_without_an_environment_key(sim: ProviderSimulator, tmp_path: Path) -> None:
    path = write_pool(tmp_path, sim, f'["{KEYS[0]}", "{KEYS[1]}"]')
    await send(ConfigurationManager(path, env={}), 4)
    assert per_key(sim) == {"aaaa": 2, "bbbb": 2}


async def test_explicit_settings_beat_the_environment(sim: ProviderSimulator, tmp_path: Path) -> None:
    path = write_pool(tmp_path, sim, f'["{KEYS[0]}", "{KEYS[1]}"]')
    pool = ConfigurationManager(path, env={"OPENAI_API_KEY": ENV_KEY},
                                overrides={"providers": {"openai": {"api_keys": [KEYS[2], OVERRIDE_KEY]}}})
    await send(pool, 2)
    assert per_key(sim) == {"cccc": 1, "xxxx": 1}
    sim.reset()
    single = ConfigurationManager(path, env={"OPENAI_API_KEY": ENV_KEY},
                                  overrides={"providers": {"openai": {"api_key": OVERRIDE_KEY}}})
    await send(single, 2)
    assert per_key(sim) == {"xxxx": 2}


async def test_an_aliases_models_keep_their_order_while_the_keys_of_each_take_turns(sim: ProviderSimulator) -> None:
    config = ConfigurationManager({
        "providers": {"openai": {"api_keys": KEYS[:2], "base_url": sim.openai_base_url},
                      "single": {"type": "openai", "api_key": KEYS[2], "base_url": sim.openai_base_url}},
        "models": {"tiers": ["openai/gpt-4.1-mini", "openai/gpt-4o"],
                   "one-key": ["single/gpt-4.1-mini", "single/gpt-4o"]}}, env={})
    await send(config, 4, model="tiers")
    await send(config, 2, model="one-key")
    requests = sim.requests_for("openai", "chat")
    assert [r.body["model"] for r in requests] == ["gpt-4.1-mini"] * 6  # the first model is always the primary
    assert per_key(sim) == {"aaaa": 2, "bbbb": 2, "cccc": 2}


def test_one_source_setting_both_api_key_and_a_pool_is_refused(sim: ProviderSimulator, tmp_path: Path) -> None:
    path = write_pool(tmp_path, sim, f'["{KEYS[0]}", "{KEYS[1]}"]')
    path.write_text(path.read_text() + f'api_key = "{KEYS[2]}"\n')
    with pytest.raises(ConfigurationError) as caught:
        ConfigurationManager(path, env={})
    message = str(caught.value)
    assert str(path) in message and "providers.openai" in message and "api_key and api_keys" in message
    assert all(key not in message for key in KEYS)
    with pytest.raises(ConfigurationError, match="config dict: providers.openai"):
        ConfigurationManager({"providers": {"openai": {"api_key": KEYS[2], "api_keys": KEYS[:2]}}}, env={})
    # The same key in both is no conflict: the pool is used as it is.
    both = ConfigurationManager({"providers": {"openai": {"api_key": KEYS[0], "api_keys": KEYS[:2]}}}, env={})
    assert len(both.config.providers["openai"].deployments()) == 2
