"""Settings that used to be accepted and do nothing (or something else) are refused with the key named, or now do
what they say; a route's own balancing strategy balances it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.errors import ConfigurationError
from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator

from .conftest import KEY

OPENAI = {"api_key": KEY, "model": "gpt-4.1-mini"}


@pytest.mark.parametrize(("data", "words"), [
    ({"budget": {"limit": 10, "per_provider": {"opneai": 3}}}, ["budget.per_provider", "'opneai'"]),
    ({"budget": {"per_provider": {"openai": -5}}}, ["budget.per_provider.openai", ">= 0"]),
    ({"budget": {"per_tag": {"team:a": -1}}}, ["budget.per_tag", ">= 0"]),
    ({"budget": {"limit": 10, "alert_thresholds": [75, 90]}}, ["budget.alert_thresholds.0", "less than or equal to 1"]),
    ({"budget": {"limit": 10, "alert_thresholds": [0]}}, ["budget.alert_thresholds.0", "greater than 0"]),
    ({"providers": {"openai": {**OPENAI, "weight": -1}}}, ["providers.openai.weight", ">= 0"]),
    ({"models": {"fast": {"targets": []}}}, ["models.fast.targets"]),
    ({"providers": {"openai": {**OPENAI, "http_referer": "https://example.com"}}},
     ["providers.openai.http_referer", "openrouter only"]),
    ({"providers": {"openai": {**OPENAI, "azure_deployments": {"gpt-4o": "prod"}}}},
     ["providers.openai.azure_deployments", "azure only"]),
    ({"providers": {"anthropic": {**OPENAI, "aws_region": "us-east-1"}}}, ["providers.anthropic.aws_region"]),
    ({"llm_settings": {"defualt_provider": "openai"}}, ["llm_settings.defualt_provider", "older layout"]),
    ({"llm_settings": {"enable_monitorng": True}}, ["llm_settings.enable_monitorng", "older layout"]),
    ({"llm_settings": "openai"}, ["'llm_settings' must be a table"]),
    ({"default_provider": "openai", "llm_settings": {"default_provider": "anthropic"}},
     ["llm_settings.default_provider", "different values"]),
])
def test_settings_that_would_do_nothing_are_refused(data: dict[str, Any], words: list[str]) -> None:
    data = {"providers": {"openai": OPENAI}, **data}
    with pytest.raises(ConfigurationError) as caught:
        ConfigurationManager(data, env={})
    for word in words:
        assert word in str(caught.value)


def test_vendor_settings_are_kept_where_they_are_read() -> None:
    config = ConfigurationManager({"providers": {
        "router": {"type": "openrouter", "api_key": KEY, "http_referer": "https://example.com"},
        "mine": {"type": "my_plugin_type", "api_key": KEY, "aws_region": "us-east-1"}}}, env={}).config
    assert config.providers["router"].http_referer == "https://example.com"
    assert config.providers["mine"].aws_region == "us-east-1"  # a plugin's type may read anything


def test_the_older_layout_still_loads_its_four_settings() -> None:
    config = ConfigurationManager({"providers": {"openai": OPENAI},
                                   "llm_settings": {"default_provider": "openai", "request_timeout": 12}},
                                  env={}).config
    assert (config.default_provider, config.request_timeout) == ("openai", 12)


def test_an_empty_api_key_is_no_key(tmp_path: Path) -> None:
    path = tmp_path / "spoon_llm.toml"
    path.write_text('[providers.openai]\napi_key = "${UNSET_FOR_THIS_TEST:-}"\nmodel = "gpt-4.1-mini"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manager = ConfigurationManager(path, env={})
    assert manager.config.providers["openai"].api_key is None
    with pytest.raises(ConfigurationError) as caught:
        manager.validate()
    assert "providers.openai" in str(caught.value)


def test_a_json_file_naming_a_key_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spoon_llm.json"
    path.write_text('{"default_provider": "openai", "default_provider": "anthropic", "providers": '
                    + json.dumps({"openai": OPENAI}) + "}")
    with pytest.raises(ConfigurationError) as caught:
        ConfigurationManager(path, env={})
    assert "'default_provider' appears twice" in str(caught.value)


async def test_a_routes_own_strategy_balances_it() -> None:
    async with ProviderSimulator() as sim:
        config = ConfigurationManager({
            "providers": {"openai": {"api_key": KEY, "base_url": sim.openai_base_url, "model": "gpt-4.1-mini"},
                          "anthropic": {"api_key": "sk-ant-test-edges-0123456789", "base_url": sim.anthropic_base_url,
                                        "model": "claude-sonnet-4-5"}},
            "models": {"both": {"targets": ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5"],
                                "strategy": "round_robin"},
                       "first": {"targets": ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5"]}},
        }, env={})
        async with LLMManager(config) as manager:
            balanced = [(await manager.chat("hi", model="both")).provider for _ in range(6)]
            ordered = [(await manager.chat("hi", model="first")).provider for _ in range(3)]
    assert sorted(balanced) == ["anthropic"] * 3 + ["openai"] * 3
    assert ordered == ["openai"] * 3  # without a strategy: the configured order, first target first


def test_a_named_model_wins_over_the_pooled_lists_whatever_their_lengths() -> None:
    for models in (["gpt-4.1-mini", "gpt-4o"], ["gpt-4.1-mini", "gpt-4o", "gpt-4.1"]):
        config = ConfigurationManager({"providers": {"openai": {
            "model": "gpt-4.1-nano", "models": models, "api_keys": [KEY, KEY[:-4] + "zzzz"]}}}, env={}).config
        deployments = config.providers["openai"].deployments()
        assert {d.model for d in deployments} == {"gpt-4.1-nano"}, models


def test_config_show_and_its_errors_never_print_a_credential() -> None:
    header = "Bearer header-secret-0123456789"
    manager = ConfigurationManager({
        "providers": {"openai": {**OPENAI, "extra_headers": {"Authorization": header, "X-Team": "research"},
                                 "options": {"token": "options-token-0123456789"}}},
        "state": {"backend": "redis", "url": "redis://:redis-password-0123@127.0.0.1:6399/0"},
        "server": {"master_key": "sk-master-shown-0123456789"},
    }, env={})
    shown = {row.key: row.value for row in manager.describe()}
    text = "\n".join(f"{k} = {v}" for k, v in shown.items())
    for secret in (header, "options-token-0123456789", "redis-password-0123", "sk-master-shown-0123456789"):
        assert secret not in text
    assert shown["providers.openai.extra_headers.X-Team"] == "'research'"  # what is not a credential still shows
    assert shown["state.url"] == "'redis://***@127.0.0.1:6399/0'"
    for data in ({"server": {"jwt": {"secret": ["jwt-secret-0123456789"]}}},
                 {"state": {"url": ["redis://:redis-password-0123@127.0.0.1:6379"]}},
                 {"providers": {"openai": {**OPENAI, "vertex_access_token": ["ya29.token-0123456789"]}}}):
        with pytest.raises(ConfigurationError) as caught:
            ConfigurationManager({"providers": {"openai": OPENAI}, **data}, env={})
        for secret in ("jwt-secret-0123456789", "redis-password-0123", "ya29.token-0123456789"):
            assert secret not in str(caught.value)


def test_a_model_from_the_environment_beats_the_files_per_key_models() -> None:
    for section in ({"api_keys": [KEY, KEY[:-4] + "zzzz"], "key_models": ["gpt-4.1-mini", "gpt-4.1-mini"]},
                    {"api_keys": [{"api_key": KEY, "model": "gpt-4.1-mini"}]}):
        config = ConfigurationManager({"providers": {"openai": {"model": "gpt-4.1-mini", **section}}},
                                      env={"OPENAI_MODEL": "gpt-4o"}).config
        assert {d.model for d in config.providers["openai"].deployments()} == {"gpt-4o"}
    same_file = ConfigurationManager({"providers": {"openai": {
        "model": "gpt-4o", "api_keys": [{"api_key": KEY, "model": "gpt-4.1-mini"}]}}}, env={}).config
    assert {d.model for d in same_file.providers["openai"].deployments()} == {"gpt-4.1-mini"}  # a key's own, as set


def test_the_older_layouts_switches_become_settings() -> None:
    with pytest.warns(Warning, match="max_concurrent_requests in each"):
        config = ConfigurationManager({"providers": {"openai": OPENAI}, "llm_settings": {
            "default_provider": "openai", "enable_monitoring": False, "enable_caching": True,
            "max_concurrent_requests": 10}}, env={}).config
    assert config.monitoring is False and config.cache.enabled is True


async def test_a_standby_of_weight_zero_is_tried_after_the_others() -> None:
    async with ProviderSimulator() as sim:
        for weights in ((0, 1), (0, 0)):
            sections = {name: {"type": "openai", "api_key": KEY, "base_url": sim.openai_base_url,
                               "model": f"{name}-m", "weight": weight}
                        for name, weight in zip(("standby", "main"), weights, strict=True)}
            routes = {strategy: {"targets": ["standby/standby-m", "main/main-m"], "strategy": strategy}
                      for strategy in ("weighted", "random")}
            config = ConfigurationManager({"providers": sections, "models": routes}, env={})
            async with LLMManager(config) as manager:
                for strategy in routes:
                    answered = {(await manager.chat("hi", model=strategy)).model for _ in range(4)}
                    if weights == (0, 1):
                        assert answered == {"main-m"}, strategy  # the standby only after the others
                    else:
                        assert answered <= {"main-m", "standby-m"}  # all standbys: they share alike
