import json
import subprocess
import sys

import spoon_llm

HEAVY = ["openai", "anthropic", "google.genai", "fastapi", "redis", "litellm", "genai_prices", "aiohttp", "rich",
         "typer", "uvicorn", "botocore", "azure.identity", "google.auth", "pydantic_settings", "playwright", "jwt"]


def test_import_loads_no_sdk_or_server():
    code = (
        "import sys, json, spoon_llm, spoon_llm.schema, spoon_llm.config, spoon_llm.registry\n"
        "spoon_llm.get_global_registry().list_providers()\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out) == []


def test_public_names_are_exported():
    exported = set(spoon_llm.__all__)
    for name in ["LLMResponse", "LLMResponseChunk", "Message", "ToolCall", "ToolSpec", "TokenUsage", "CostInfo",
                 "EmbeddingResponse", "LLMError", "ProviderError", "ConfigurationError", "RateLimitError",
                 "AuthenticationError", "ModelNotFoundError", "TokenLimitError", "NetworkError",
                 "ProviderUnavailableError", "ValidationError", "BudgetExceededError", "LLMProviderInterface",
                 "ProviderCapability", "ProviderMetadata", "LLMProviderRegistry", "register_provider",
                 "get_global_registry", "ConfigurationManager", "ProviderConfig", "hookimpl", "CallSettings"]:
        assert name in exported, name
    for name in exported:
        assert hasattr(spoon_llm, name), name
    assert sorted(spoon_llm.__all__) == spoon_llm.__all__


def test_call_settings_is_exported_lazily():
    code = ("import sys, spoon_llm\nassert 'spoon_llm.call_settings' not in sys.modules\n"
            "from spoon_llm import CallSettings\nfrom spoon_llm.call_settings import CallSettings as Same\n"
            "assert CallSettings is Same\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "ok"


def test_ci_runs_the_readme_test_command():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    ci = (root / ".ci" / "run").read_text()
    command = ci.split("TEST_COMMAND='", 1)[1].split("'\n", 1)[0]
    readme = (root / "README.md").read_text()
    assert f"```bash\n{command}\n```" in readme
