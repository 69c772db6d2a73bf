"""``spoon-llm config validate`` and ``ConfigurationManager.validate()``: every check that needs no network.

Each case is a file with one mistake; the command line (a real subprocess) and the library both name the file,
the dotted key and the fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.errors import ConfigurationError

from .conftest import KEY

GOOD_OPENAI = f'[providers.openai]\napi_key = "{KEY}"\nmodel = "gpt-4.1-mini"\n'

# (file content, dotted key, words the message must contain: what is wrong and the fix)
CASES = {
    "base_url without a scheme": (
        f'[providers.local]\ntype = "openai_compatible"\nbase_url = "127.0.0.1:8765/v1"\napi_key = "{KEY}"\n',
        "providers.local.base_url",
        ["is not an http:// or https:// URL", "fix: base_url = 'http://127.0.0.1:8765/v1'"]),
    "base_url with another scheme": (
        '[providers.local]\ntype = "openai_compatible"\nbase_url = "ftp://example.com/v1"\n',
        "providers.local.base_url", ["'ftp://example.com/v1' is not an http:// or https:// URL"]),
    "unregistered provider type": (
        f'[providers.main]\ntype = "opneai"\napi_key = "{KEY}"\n',
        "providers.main.type",
        ["provider type 'opneai' is not registered", "did you mean 'openai'", "fix: set type to one of"]),
    "fallback_chain names a provider that does not exist": (
        'fallback_chain = ["openai", "antropic"]\n' + GOOD_OPENAI,
        "fallback_chain[1]",
        ["fallback_chain names 'antropic'", "fix: add [providers.antropic] or remove it from the chain"]),
    "an alias routes to a provider that does not exist": (
        GOOD_OPENAI + '[models]\nsmart = "anthropc/claude-sonnet-4-5"\n',
        "models.smart", ["anthropc"]),
    "a route's fallback names nothing configured": (
        GOOD_OPENAI + '[models.smart]\ntargets = ["openai/gpt-4.1-mini"]\nfallback = ["cheep"]\n',
        "models.smart.fallback", ["fallback names 'cheep'", "fix: define it or correct the name"]),
    "a missing key": (
        '[providers.anthropic]\nmodel = "claude-sonnet-4-5"\n',
        "providers.anthropic.api_key",
        ["provider 'anthropic' needs an API key and has none", "fix: set ANTHROPIC_API_KEY"]),
    "an unset ${VAR}": (
        '[providers.openai]\napi_key = "${SPOON_TEST_NOT_SET}"\n',
        "providers.openai.api_key",
        ["${SPOON_TEST_NOT_SET} names an environment variable that is not set",
         "fix: export SPOON_TEST_NOT_SET"]),
    "the default names an unknown alias": (
        'default_provider = "smrt"\n' + GOOD_OPENAI + '[models]\nsmart = "openai/gpt-4.1-mini"\n',
        "default_provider", ["smrt", "did you mean 'smart'"]),
    "an empty configuration": ("", None, ["no provider is configured", "fix: add a [providers.<name>] section"]),
}


def clean_env() -> dict[str, str]:
    """The environment without provider keys or a configuration file named elsewhere."""
    return {k: v for k, v in os.environ.items()
            if not k.endswith(("_API_KEY", "_BASE_URL")) and k not in ("SPOON_LLM_CONFIG", "SPOON_TEST_NOT_SET")}


@pytest.mark.parametrize("case", list(CASES))
def test_the_command_line_names_file_key_and_fix(case: str, tmp_path: Path) -> None:
    content, key, words = CASES[case]
    (tmp_path / "app.toml").write_text(content)
    env = clean_env()
    env["COLUMNS"] = "300"
    result = subprocess.run([sys.executable, "-m", "spoon_llm.cli", "config", "validate", "app.toml"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ok" not in result.stdout
    text = " ".join(result.stderr.split())
    assert text.startswith("error: ") and "app.toml" in text
    if key is not None:
        assert f"app.toml: {key}" in text, text
    for word in words:
        assert word in text, text
    assert KEY not in result.stdout + result.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_the_library_raises_one_configuration_error_naming_file_key_and_fix(case: str, tmp_path: Path) -> None:
    content, key, words = CASES[case]
    path = tmp_path / "app.toml"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        ConfigurationManager(path, env=clean_env()).validate()
    error = caught.value
    assert str(path) in (error.source or "") and key == error.key
    for word in words:
        assert word in str(error)


def test_every_problem_is_listed_once_and_a_good_file_passes(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text('[providers.anthropic]\nmodel = "claude-sonnet-4-5"\n'
                    '[providers.mine]\ntype = "opneai"\napi_key = "${SPOON_TEST_NOT_SET}"\n')
    with pytest.raises(ConfigurationError) as caught:
        ConfigurationManager(path, env=clean_env()).validate()
    message = str(caught.value)
    assert message.startswith("3 problems:")
    assert "providers.mine.api_key: ${SPOON_TEST_NOT_SET}" in message
    assert "providers.mine.type: provider type 'opneai'" in message
    assert "providers.anthropic.api_key: provider 'anthropic' needs an API key" in message

    path.write_text('fallback_chain = ["openai", "local"]\n' + GOOD_OPENAI + '[providers.local]\ntype = "ollama"\n'
                    'base_url = "http://127.0.0.1:11434/v1"\n[models]\nsmart = "openai/gpt-4.1-mini"\n')
    ConfigurationManager(path, env=clean_env()).validate()  # a keyless local server needs no key


def test_a_key_from_the_environment_counts_and_a_default_makes_a_var_optional(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text('[providers.anthropic]\nmodel = "claude-sonnet-4-5"\n')
    ConfigurationManager(path, env={**clean_env(), "ANTHROPIC_API_KEY": KEY}).validate()
    path.write_text('[providers.openai]\napi_key = "${SPOON_TEST_NOT_SET:-' + KEY + '}"\n')
    ConfigurationManager(path, env=clean_env()).validate()


def test_a_bad_base_url_or_fallback_name_fails_at_construction_before_any_request(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text(CASES["base_url without a scheme"][0])
    with pytest.raises(ConfigurationError, match="providers.local.base_url"):
        ConfigurationManager(path, env=clean_env())
    path.write_text(CASES["fallback_chain names a provider that does not exist"][0])
    with pytest.raises(ConfigurationError, match=r"fallback_chain\[1\]"):
        ConfigurationManager(path, env=clean_env())


def test_dict_sources_are_named_too() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ConfigurationManager({"providers": {"x": {"type": "openai_compatible", "base_url": "localhost:8000"}}},
                             env=clean_env())
    assert caught.value.source == "config dict" and caught.value.key == "providers.x.base_url"


def test_the_readmes_configuration_example_is_valid_with_its_variables_set(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = next(block for block in readme.split("```toml\n")[1:] if block.startswith("default_provider"))
    path = tmp_path / "spoon_llm.toml"
    path.write_text(example.split("```", 1)[0])
    names = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "KEY_A", "KEY_B"]
    env = {**clean_env(), **{name: f"sk-readme-{name.lower()}-0123456789" for name in names}}
    manager = ConfigurationManager(path, env=env)
    manager.validate()
    assert set(manager.config.providers) == {"openai", "anthropic", "gemini", "openai-pool", "local"}
    with pytest.raises(ConfigurationError) as caught:  # without them, each unset variable is named
        ConfigurationManager(path, env=clean_env()).validate()
    for name in names:
        assert f"${{{name}}} names an environment variable that is not set" in str(caught.value)
