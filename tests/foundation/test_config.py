import json
import logging
import warnings
from pathlib import Path

import pytest

from spoon_llm import ConfigurationError, ConfigurationManager
from spoon_llm.config import ConfigWarning

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-0123456789abcdefghijKLMNOP"
NAMES = ["openai", "anthropic", "gemini", "deepseek", "openrouter", "vllm"]


def manager(source=None, env=None, **kw):
    return ConfigurationManager(source, env=env or {}, provider_names=NAMES, **kw)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- precedence: explicit > env > file > defaults ---------------------------------------------------------

@pytest.mark.parametrize(("in_file", "in_env", "explicit", "expected", "source"), [
    (None, None, None, 60.0, "default"),
    (11, None, None, 11.0, "file"),
    (None, 22, None, 22.0, "environment variable OPENAI_TIMEOUT"),
    (11, 22, None, 22.0, "environment variable OPENAI_TIMEOUT"),
    (11, None, 33, 33.0, "explicit settings"),
    (None, 22, 33, 33.0, "explicit settings"),
    (11, 22, 33, 33.0, "explicit settings"),
])
def test_precedence_matrix(tmp_path, in_file, in_env, explicit, expected, source):
    section = "[providers.openai]\nmodel = 'gpt-4o'\n" + (f"timeout = {in_file}\n" if in_file else "")
    path = write(tmp_path, "config.toml", section)
    env = {"OPENAI_TIMEOUT": str(in_env)} if in_env else {}
    overrides = {"providers": {"openai": {"timeout": explicit}}} if explicit else None
    cm = manager(path, env, overrides=overrides)
    assert cm.provider_section("openai").timeout == expected
    row = {r.key: r for r in cm.describe()}["providers.openai.timeout"]
    assert row.source == (path if source == "file" else source)


def test_dict_source_and_json_file_are_equivalent_to_toml(tmp_path):
    data = {"default_provider": "anthropic", "providers": {"anthropic": {"model": "claude-sonnet-4-5",
                                                                          "max_tokens": 1024}}}
    toml_path = write(tmp_path, "c.toml", "default_provider = 'anthropic'\n[providers.anthropic]\n"
                                          "model = 'claude-sonnet-4-5'\nmax_tokens = 1024\n")
    json_path = write(tmp_path, "c.json", json.dumps(data))
    configs = [manager(s).config for s in (data, toml_path, json_path)]
    assert configs[0] == configs[1] == configs[2]
    assert manager(data).get_default_provider() == "anthropic"


def test_environment_alone_configures_providers():
    cm = manager(env={"OPENAI_API_KEY": KEY, "OPENAI_MODEL": "gpt-4.1", "GOOGLE_API_KEY": KEY + "g",
                      "DEFAULT_LLM_PROVIDER": "gemini", "LLM_FALLBACK_CHAIN": "gemini, openai",
                      "VLLM_ENDPOINT": "http://127.0.0.1:8000/v1", "VLLM_HOURLY_RATE": "2.5",
                      "OPENROUTER_HTTP_REFERER": "https://app.example", "OPENROUTER_X_TITLE": "My App",
                      "BUDGET_LIMIT": "12.5"})
    assert cm.get_default_provider() == "gemini"
    assert cm.get_fallback_chain() == ["gemini", "openai"]
    assert cm.provider_section("gemini").primary_api_key() == KEY + "g"
    assert cm.provider_section("openai").model == "gpt-4.1"
    assert cm.provider_section("vllm").hourly_rate == 2.5
    assert cm.provider_section("openrouter").x_title == "My App"
    assert cm.budget.limit == 12.5
    assert set(cm.list_configured_providers()) == {"openai", "gemini", "vllm", "openrouter"}


def test_llm_provider_is_the_older_default_variable():
    assert manager(env={"LLM_PROVIDER": "openai", "OPENAI_API_KEY": KEY}).get_default_provider() == "openai"


def test_config_file_named_by_environment(tmp_path):
    path = write(tmp_path, "named.toml", "[providers.deepseek]\nmodel = 'deepseek-chat'\n")
    assert manager(env={"SPOON_LLM_CONFIG": path}).provider_section("deepseek").model == "deepseek-chat"


def test_default_file_location_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "spoon_llm.toml", "[providers.openai]\nmodel = 'from-default-file'\n")
    assert manager().provider_section("openai").model == "from-default-file"


def test_interpolation_with_defaults_and_unset_secrets(tmp_path):
    path = write(tmp_path, "c.toml", "[providers.openai]\napi_key = '${MY_OPENAI_KEY}'\n"
                                     "base_url = '${OPENAI_HOST:-http://127.0.0.1:9}/v1'\n"
                                     "[providers.anthropic]\napi_key = '${UNSET_VAR}'\n")
    cm = manager(path, {"MY_OPENAI_KEY": KEY})
    assert cm.provider_section("openai").primary_api_key() == KEY
    assert cm.provider_section("openai").base_url == "http://127.0.0.1:9/v1"
    assert cm.provider_section("anthropic").api_key is None
    with pytest.raises(ConfigurationError, match="Missing required field 'api_key'"):
        cm.load_provider_config("anthropic")


@pytest.mark.parametrize("placeholder", ["your-api-key", "your_openai_api_key_here", "<OPENAI_KEY>", "sk-..."])
def test_placeholders_are_unset_with_a_warning(tmp_path, placeholder):
    path = write(tmp_path, "c.toml", f"[providers.openai]\napi_key = '{placeholder}'\n")
    with pytest.warns(ConfigWarning, match="placeholder"):
        cm = manager(path)
    assert cm.provider_section("openai").api_key is None
    with pytest.warns(ConfigWarning, match="OPENAI_API_KEY"):
        manager(env={"OPENAI_API_KEY": placeholder})


def test_legacy_layout_is_accepted(tmp_path):
    path = write(tmp_path, "config.json", json.dumps({
        "llm_providers": {"openai": {"api_key": KEY, "model": "gpt-4.1", "retry_attempts": 5}},
        "llm_settings": {"default_provider": "openai", "fallback_chain": ["openai"]},
    }))
    cm = manager(path)
    assert cm.get_default_provider() == "openai"
    assert cm.provider_section("openai").max_retries == 5


def test_several_keys_become_deployments():
    cm = manager({"providers": {"openai": {
        "api_keys": [KEY + "1", KEY + "2", {"api_key": KEY + "3", "alias": "batch", "model": "gpt-4.1-mini"}],
        "key_models": ["gpt-4o", "gpt-4.1", "ignored"], "key_rpm": [60, 120, 30], "model": "gpt-4o-mini"}}})
    deployments = cm.provider_section("openai").deployments()
    assert [(d.name, d.model, d.rpm) for d in deployments] == [
        ("openai#key1", "gpt-4o", 60), ("openai#key2", "gpt-4.1", 120), ("openai#batch", "gpt-4.1-mini", 30)]
    assert deployments[1].api_key.get_secret_value() == KEY + "2"


def test_model_aliases():
    cm = manager({"providers": {"anthropic": {}, "openrouter": {}}, "models": {
        "sonnet": "anthropic/claude-sonnet-4-5",
        "qwen": {"provider": "openrouter", "model": "qwen/qwen3-32b"},
        "smart": {"targets": ["anthropic/claude-opus-4-1", "openrouter/openai/gpt-5"], "fallback": ["sonnet"]},
    }})
    assert str(cm.get_route("sonnet").targets[0]) == "anthropic/claude-sonnet-4-5"
    assert cm.get_route("qwen").targets[0].model == "qwen/qwen3-32b"
    smart = cm.get_route("smart")
    assert smart.targets[1].provider == "openrouter" and smart.targets[1].model == "openai/gpt-5"
    assert smart.fallback == ["sonnet"]


def test_validate_model():
    cm = manager({"providers": {"openai": {"models": ["gpt-4o", "gpt-4.1"]}, "anthropic": {}}})
    assert cm.validate_model("openai", "gpt-4o")
    assert not cm.validate_model("openai", "gpt-2")
    # No list configured: the price book (and the provider's metadata) say what exists.
    assert cm.validate_model("anthropic", "claude-sonnet-4-5")
    assert not cm.validate_model("anthropic", "claude-anything")
    assert not cm.validate_model("anthropic", " ")


def test_reload_config_sees_file_changes(tmp_path):
    path = write(tmp_path, "c.toml", "[providers.openai]\nmodel = 'one'\n")
    cm = manager(path)
    Path(path).write_text("[providers.openai]\nmodel = 'two'\n")
    cm.reload_config()
    assert cm.provider_section("openai").model == "two"


def test_per_call_overrides_keep_the_key():
    cm = manager({"providers": {"openai": {"api_key": KEY, "model": "a"}}})
    override = cm.provider_section("openai", model="b", temperature=0.5)
    assert (override.model, override.temperature, override.primary_api_key()) == ("b", 0.5, KEY)


# -- errors name the source, the key and the fix -----------------------------------------------------------

def test_bad_value_in_file_names_file_key_and_expectation(tmp_path):
    path = write(tmp_path, "config.toml", "[providers.openai]\nmax_tokens = 'abc'\n")
    with pytest.raises(ConfigurationError) as info:
        manager(path)
    assert str(info.value) == f"{path}: providers.openai.max_tokens: expected a positive integer, got 'abc'"
    assert info.value.source == path and info.value.key == "providers.openai.max_tokens"


def test_bad_value_in_environment_names_the_variable():
    with pytest.raises(ConfigurationError, match=r"environment variable OPENAI_TEMPERATURE: "
                                                 r"providers\.openai\.temperature: expected a number from 0 to 2"):
        manager(env={"OPENAI_TEMPERATURE": "7"})


def test_unknown_key_gets_did_you_mean(tmp_path):
    path = write(tmp_path, "c.toml", "defualt_provider = 'openai'\n[providers.openai]\nmax_token = 5\n"
                                     "[retry]\nmax_retry = 2\n")
    with pytest.raises(ConfigurationError) as info:
        manager(path)
    text = str(info.value)
    assert "defualt_provider: unknown key; did you mean 'default_provider'?" in text
    assert "providers.openai.max_token: unknown key; did you mean 'max_tokens'?" in text
    assert "retry.max_retry: unknown key; did you mean 'max_retries'?" in text


def test_key_lists_that_do_not_line_up():
    with pytest.raises(ConfigurationError, match="api_keys has 2 entries but key_rpm has 3"):
        manager({"providers": {"openai": {"api_keys": [KEY, KEY + "x"], "key_rpm": [1, 2, 3]}}})


def test_syntax_errors_name_the_file(tmp_path):
    toml_path = write(tmp_path, "broken.toml", "[providers.openai\n")
    with pytest.raises(ConfigurationError, match=r"broken\.toml: invalid TOML"):
        manager(toml_path)
    json_path = write(tmp_path, "broken.json", '{"providers": }')
    with pytest.raises(ConfigurationError, match=r"broken\.json: invalid JSON at line 1, column 15"):
        manager(json_path)
    with pytest.raises(ConfigurationError, match="missing.toml: file not found"):
        manager(str(tmp_path / "missing.toml"))


def test_unknown_provider_references():
    with pytest.raises(ConfigurationError, match="default_provider: unknown provider 'opnai'; did you mean 'openai'"):
        manager({"default_provider": "opnai", "providers": {"openai": {}}})
    with pytest.raises(ConfigurationError, match="models.fast: route targets unknown provider 'openrouterr'"):
        manager({"providers": {"openrouter": {}}, "models": {"fast": "openrouterr/x"}})
    with pytest.raises(ConfigurationError, match="unknown provider 'anthropi'; did you mean 'anthropic'"):
        manager({}).provider_section("anthropi")


def test_no_provider_configured_says_how_to_fix():
    with pytest.raises(ConfigurationError, match="set an API key such as OPENAI_API_KEY"):
        manager({}).get_default_provider()


def test_example_config_toml_validates():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cm = ConfigurationManager(REPO_ROOT / "config.toml", env={"OPENAI_API_KEY": KEY})
    assert cm.list_configured_providers()
    assert cm.provider_section("openai").primary_api_key() == KEY


# -- secrets are never printed --------------------------------------------------------------------------------

def test_api_key_appears_in_no_repr_str_exception_or_log(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = write(tmp_path, "c.toml", f"[providers.openai]\napi_key = '{KEY}'\napi_keys = ['{KEY}', '{KEY}2']\n"
                                     "[providers.anthropic]\nmax_tokens = 'bad'\n")
    with pytest.raises(ConfigurationError) as info:
        manager(path)
    texts = [str(info.value), repr(info.value)]
    good = write(tmp_path, "good.toml", f"[providers.openai]\napi_key = '{KEY}'\napi_keys = ['{KEY}', '{KEY}2']\n")
    cm = manager(good, {"ANTHROPIC_API_KEY": KEY + "env"})
    section = cm.provider_section("openai")
    texts += [repr(cm), str(cm.config), repr(cm.config), repr(section), str(section),
              section.model_dump_json(), repr(section.deployments()), str(cm.describe()),
              repr(cm.provider_section("anthropic"))]
    with pytest.raises(ConfigurationError) as bad_override:
        cm.provider_section("openai", max_tokens=-1)
    texts.append(str(bad_override.value))
    texts.append(caplog.text)
    for text in texts:
        assert KEY not in text
    assert section.primary_api_key() == KEY


def test_key_in_bad_secret_field_is_not_echoed():
    with pytest.raises(ConfigurationError) as info:
        manager({"providers": {"openai": {"api_key": ["not", "a", KEY]}}})
    assert KEY not in str(info.value)
    assert "(hidden)" in str(info.value)


def test_unset_keys_drop_with_their_per_key_settings(tmp_path):
    path = write(tmp_path, "c.toml", "[providers.openai]\napi_keys = ['${KEY_A}', '${KEY_B}', 'your-api-key']\n"
                                     "key_models = ['a', 'b', 'c']\nkey_rpm = [1, 2, 3]\n")
    with pytest.warns(ConfigWarning):
        cm = manager(path, {"KEY_B": KEY})
    [only] = cm.provider_section("openai").deployments()
    assert (only.model, only.rpm, only.api_key.get_secret_value()) == ("b", 2, KEY)
    with pytest.warns(ConfigWarning):
        assert manager(path).provider_section("openai").api_keys == []


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("max_tokens", True, "expected a positive integer, got True"),
    ("max_tokens", 2.5, "expected a positive integer, got 2.5"),
    ("max_retries", True, "expected a whole number >= 0, got True"),
    ("max_retries", -1, "expected a whole number >= 0, got -1"),
    ("timeout", False, "expected a positive number of seconds, got False"),
    ("timeout", "soon", "expected a positive number of seconds, got 'soon'"),
    ("temperature", 2.5, "expected a number from 0 to 2, got 2.5"),
])
def test_numbers_are_checked_and_booleans_are_not_numbers(key, value, expected):
    with pytest.raises(ConfigurationError) as info:
        ConfigurationManager({"providers": {"openai": {"api_key": "sk-test", key: value}}},
                             env={}).provider_section("openai")
    assert str(info.value) == f"config dict: providers.openai.{key}: {expected}"


def test_numbers_given_as_text_or_integral_floats_are_accepted():
    section = ConfigurationManager({"providers": {"openai": {
        "api_key": "sk-test", "max_tokens": "12", "max_retries": 2.0, "timeout": "1.5", "temperature": 0}}},
        env={}).provider_section("openai")
    assert (section.max_tokens, section.max_retries, section.timeout, section.temperature) == (12, 2, 1.5, 0.0)
