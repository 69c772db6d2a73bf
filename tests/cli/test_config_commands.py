import subprocess
import sys

import pytest

KEY = "sk-test-cli-0123456789abcdefghij"


def run(*args, env_extra=None, cwd=None):
    import os

    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(env_extra or {})
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "spoon_llm.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd)


def test_providers_lists_builtins_and_the_plugin_with_configured_state(tmp_path):
    result = run("providers", env_extra={"OPENAI_API_KEY": KEY}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") >= 4}
    assert "plugin echo" in lines["echo"]
    assert "builtin" in lines["anthropic"]
    assert "yes" in lines["openai"] and "no" in lines["anthropic"].split("│")[4]
    assert KEY not in result.stdout + result.stderr


def test_config_show_masks_secrets_and_names_sources(tmp_path):
    (tmp_path / "c.toml").write_text(f"[providers.openai]\napi_key = '{KEY}'\nmodel = 'gpt-4o'\n")
    result = run("config", "show", "-c", "c.toml", env_extra={"OPENAI_MAX_TOKENS": "99"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stdout
    assert "(hidden)" in result.stdout
    assert "environment variable OPENAI_MAX_TOKENS" in result.stdout
    assert "c.toml" in result.stdout


@pytest.mark.parametrize(("content", "expected"), [
    ("[providers.openai]\nmax_tokens = 'abc'\n", "providers.openai.max_tokens: expected a positive integer, got 'abc'"),
    ("[providers.openai]\ntemprature = 1\n", "did you mean 'temperature'"),
])
def test_config_validate_reports_file_key_and_fix(tmp_path, content, expected):
    (tmp_path / "bad.toml").write_text(content)
    result = run("config", "validate", "bad.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert "bad.toml" in result.stderr and expected in " ".join(result.stderr.split())


def test_config_validate_accepts_a_good_file(tmp_path):
    # A provider that needs a key must have one: validate reports a missing key.
    (tmp_path / "good.toml").write_text("[providers.anthropic]\nmodel = 'claude-sonnet-4-5'\n"
                                        "api_key = 'sk-ant-validate-0123456789'\n")
    result = run("config", "validate", "good.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "anthropic" in result.stdout
