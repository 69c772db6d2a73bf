"""Configuration as the older API and the pooled module wrote it: required keys, model validation, parallel
key lists with per-key limits, per-model prices, and a forced backend switch."""

from __future__ import annotations

import json

import pytest

from spoon_llm import ConfigurationError, ConfigurationManager, LLMError
from spoon_llm.config import validate_model
from spoon_llm.testing import Fault, ProviderSimulator

from .conftest import KEY, KEY2, openai_section


def test_load_provider_config_without_a_key_raises():
    config = ConfigurationManager({}, env={})
    with pytest.raises(ConfigurationError, match="Missing required field 'api_key'") as caught:
        config.load_provider_config("openai")
    assert "OPENAI_API_KEY" in str(caught.value) and caught.value.key == "providers.openai.api_key"
    assert config.load_provider_config("vllm").api_key is None  # a self-hosted server needs none


def test_load_provider_config_reads_the_environment_as_the_older_api_did():
    config = ConfigurationManager(env={"OPENAI_API_KEY": KEY, "OPENAI_MODEL": "gpt-4o", "OPENAI_MAX_TOKENS": "512"})
    section = config.load_provider_config("openai")
    assert (section.model, section.max_tokens) == ("gpt-4o", 512)
    assert config.get_default_provider() == "openai"


def test_validate_model_is_truthful_without_a_model_list():
    config = ConfigurationManager({"providers": {"openai": {"api_key": KEY}, "vllm": {}}}, env={})
    assert validate_model("openai", "gpt-4o-mini", config)
    assert not validate_model("openai", "gpt-nonexistent-9", config)
    assert not validate_model("openai", "", config)
    assert not validate_model("no-such-provider", "gpt-4o", config)
    assert validate_model("vllm", "Qwen/Qwen2.5-7B-Instruct", config)  # serves whatever it was started with
    assert config.validate_model("openai", "gpt-4o")
    listed = ConfigurationManager({"providers": {"openai": {"api_key": KEY, "models": ["my-finetune"]}}}, env={})
    assert listed.validate_model("openai", "my-finetune") and not listed.validate_model("openai", "gpt-4o")


async def test_parallel_keys_and_models_each_key_its_own_model(sim, make_manager):
    manager = make_manager({"providers": {"openai": {
        "base_url": sim.openai_base_url, "api_keys": [KEY, KEY2], "models": ["gpt-4o", "gpt-4o-mini"],
    }}, "load_balancing": "round_robin"})
    seen = set()
    for _ in range(4):
        response = await manager.chat("Hello")
        seen.add((response.deployment, sim.last_request().body["model"]))
    assert seen == {("openai#key1", "gpt-4o"), ("openai#key2", "gpt-4o-mini")}
    status = manager.get_status()["metrics"]
    assert set(status["usage_by_model"]) == {"gpt-4o", "gpt-4o-mini"}


async def test_per_key_rate_limits_with_input_and_output_tpm(sim, make_manager):
    # Key 1 may produce 20 output tokens a minute: after one answer (15 reserved, about 7 used) it has no room
    # for another 15, while key 2's own limit leaves room for all the others.
    manager = make_manager({"providers": {"openai": {
        "base_url": sim.openai_base_url, "api_keys": [KEY, KEY2], "models": ["gpt-4o", "gpt-4o-mini"],
        "rate_limits": [{"requests_per_minute": 100, "input_tokens_per_minute": 10_000, "output_tokens_per_minute": 20},
                        {"requests_per_minute": 100, "input_tokens_per_minute": 10_000,
                         "output_tokens_per_minute": 10_000}],
    }}, "rate_limits": {"on_limit": "fail"}})
    deployments = {d.name: d for d in manager.config_manager.config.providers["openai"].deployments()}
    assert (deployments["openai#key1"].input_tpm, deployments["openai#key1"].output_tpm) == (10_000, 20)
    assert (deployments["openai#key2"].rpm, deployments["openai#key2"].output_tpm) == (100, 10_000)
    served = [(await manager.chat("Hello", max_tokens=15)).deployment for _ in range(4)]
    assert served.count("openai#key1") == 1 and served.count("openai#key2") == 3
    assert sorted(r.body["model"] for r in sim.requests) == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini"]


async def test_one_rate_limits_table_for_every_key(sim, make_manager):
    manager = make_manager({"providers": {"openai": {
        "base_url": sim.openai_base_url, "api_keys": [KEY, KEY2], "model": "gpt-4o-mini",
        "rate_limits": {"requests_per_minute": 1, "input_tokens_per_minute": 10_000,
                        "output_tokens_per_minute": 10_000},
    }}, "rate_limits": {"on_limit": "fail"}})
    first = await manager.chat("one")
    second = await manager.chat("two")
    assert {first.deployment, second.deployment} == {"openai#key1", "openai#key2"}  # one request each a minute
    with pytest.raises(LLMError) as refused:
        await manager.chat("three", fallback=False)
    assert "rpm" in str(refused.value)
    assert sim.request_count == 2


def test_pooled_lists_that_do_not_line_up_are_rejected():
    with pytest.raises(ConfigurationError, match="rate_limits has 1 entries but api_keys has 2") as caught:
        ConfigurationManager({"providers": {"openai": {"api_keys": [KEY, KEY2],
                                                        "rate_limits": [{"requests_per_minute": 5}]}}}, env={})
    assert "providers.openai" in str(caught.value) and KEY not in str(caught.value)
    with pytest.raises(ConfigurationError, match="unknown limit 'requests_per_second'"):
        ConfigurationManager({"providers": {"openai": {"api_key": KEY,
                                                        "rate_limits": {"requests_per_second": 5}}}}, env={})


async def test_per_model_costs_of_the_older_json_layout_price_requests(sim, tmp_path):
    from spoon_llm import LLMManager

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"default_provider": "openai", "providers": {"openai": {
        "api_key": KEY, "base_url": sim.openai_base_url, "default_model": "house-model",
        "models": {"house-model": {"model_type": "chat", "max_tokens": 64, "cost_per_input_token": 0.001,
                                   "cost_per_output_token": 0.002}},
    }}}))
    config = ConfigurationManager(str(path), env={})
    assert config.get_pricing("house-model").input_per_1m == 1000.0
    manager = LLMManager(config)
    try:
        response = await manager.chat("Hello")
    finally:
        await manager.cleanup()
    assert sim.last_request().body["model"] == "house-model"
    assert sim.last_request().body["max_tokens"] == 64  # the default model's own max_tokens
    usage = response.usage
    assert usage is not None and response.cost is not None
    assert response.cost.total_cost == pytest.approx(usage.input_tokens * 0.001 + usage.output_tokens * 0.002)


def test_per_model_prices_must_come_in_pairs(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"providers": {"openai": {"api_key": KEY, "models": {
        "m": {"cost_per_input_token": 0.001}}}}}))
    with pytest.raises(ConfigurationError, match="cost_per_output_token is missing") as caught:
        ConfigurationManager(str(path), env={})
    assert str(path) in str(caught.value) and "providers.openai.models.m" in str(caught.value)


async def test_a_forced_switch_puts_the_backend_back_in_rotation(sim: ProviderSimulator, make_manager):
    manager = make_manager({"providers": {"primary": openai_section(sim, type="openai"),
                                          "vllm": {"base_url": sim.openai_base_url, "model": "qwen"}},
                            "default_provider": "primary"})
    sim.fault("openai", Fault.error(503), endpoint="health", times=None)
    refused = await manager.switch_backend("vllm")
    assert refused["success"] is False
    forced = await manager.switch_backend("vllm", skip_health_check=True)
    assert forced["success"] is True and forced["backend"] == "vllm"
    response = await manager.chat("Hello", fallback=False)
    assert response.provider == "vllm" and sim.last_request().body["model"] == "qwen"
