"""Prices: vendors' published prices, aliases, overrides, hourly rates, cache/reasoning tokens, unpriced models."""

from __future__ import annotations

import logging
import subprocess
import sys
from decimal import Decimal

import pytest

from spoon_llm.pricing import HourlyMeter, PriceBook, TokenPrices
from spoon_llm.types import TokenUsage

genai_prices = pytest.importorskip("genai_prices", reason="genai-prices is not installed (spoon-llm[prices])")

M = 1_000_000


@pytest.fixture
def book() -> PriceBook:
    return PriceBook()


def per_million(book: PriceBook, model: str, provider_type: str, input_tokens: int = 1000) -> TokenPrices:
    rates = book.rates(model, provider_type)
    assert rates is not None, model
    p = rates.prices_for(input_tokens)
    return TokenPrices(*(None if v is None else round(v * M, 6) for v in (
        p.input, p.output, p.cached_input, p.cache_write, p.cache_write_1h, p.reasoning)))  # type: ignore[arg-type]


# USD per million tokens as published on the vendors' pricing pages.
def test_openai_published_prices(book: PriceBook) -> None:
    gpt4o = per_million(book, "gpt-4o", "openai")
    assert (gpt4o.input, gpt4o.output, gpt4o.cached_input) == (2.5, 10.0, 1.25)
    mini = per_million(book, "gpt-4.1-mini", "openai")
    assert (mini.input, mini.output, mini.cached_input) == (0.4, 1.6, 0.1)


def test_anthropic_published_prices(book: PriceBook) -> None:
    sonnet = per_million(book, "claude-sonnet-4-5", "anthropic")
    assert (sonnet.input, sonnet.output, sonnet.cached_input, sonnet.cache_write) == (3.0, 15.0, 0.3, 3.75)
    assert sonnet.cache_write_1h == 6.0
    haiku = per_million(book, "claude-haiku-4-5", "anthropic")
    assert (haiku.input, haiku.output, haiku.cached_input, haiku.cache_write) == (1.0, 5.0, 0.1, 1.25)


def test_google_published_prices_with_long_context_tier(book: PriceBook) -> None:
    flash = per_million(book, "gemini-2.5-flash", "gemini")
    assert (flash.input, flash.output) == (0.3, 2.5)
    pro_short = per_million(book, "gemini-2.5-pro", "gemini", input_tokens=100_000)
    pro_long = per_million(book, "gemini-2.5-pro", "gemini", input_tokens=300_000)
    assert (pro_short.input, pro_short.output) == (1.25, 10.0)
    assert (pro_long.input, pro_long.output) == (2.5, 15.0)


def test_openrouter_and_deepseek_are_priced(book: PriceBook) -> None:
    routed = per_million(book, "anthropic/claude-3.5-sonnet", "openrouter")
    assert (routed.input, routed.output) == (3.0, 15.0)
    deepseek = book.rates("deepseek-chat", "deepseek")
    assert deepseek is not None and deepseek.source.startswith("genai-prices")
    p = deepseek.base
    assert p.cached_input is not None and 0 < p.cached_input < p.input < p.output


def test_dated_and_aliased_names_match(book: PriceBook) -> None:
    usage = TokenUsage(input_tokens=1000, output_tokens=100)
    pairs = [("gpt-4o-2024-08-06", "gpt-4o", "openai"),
             ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "anthropic"),
             ("models/gemini-2.5-flash", "gemini-2.5-flash", "gemini")]
    for dated, plain, provider_type in pairs:
        a = book.cost(usage, dated, provider_type=provider_type)
        b = book.cost(usage, plain, provider_type=provider_type)
        assert not a.unpriced and a.total_cost == b.total_cost > 0
        assert a.source == b.source == f"genai-prices {genai_prices.__version__}: {plain}"


@pytest.mark.parametrize(("model", "provider_type", "provider_id"), [
    ("gpt-4o", "openai", "openai"), ("claude-sonnet-4-5", "anthropic", "anthropic"),
    ("gemini-2.5-pro", "gemini", "google"), ("claude-haiku-4-5", "anthropic", "anthropic")])
@pytest.mark.parametrize("usage", [
    TokenUsage(input_tokens=12_345, output_tokens=678),
    TokenUsage(input_tokens=10_000, output_tokens=2_000, cached_input_tokens=4_000),
    TokenUsage(input_tokens=10_000, output_tokens=500, cached_input_tokens=3_000, cache_write_tokens=2_000),
    TokenUsage(input_tokens=250_000, output_tokens=9_000, cached_input_tokens=50_000),
    TokenUsage(input_tokens=800, output_tokens=5_000, reasoning_tokens=4_000),
])
def test_our_arithmetic_matches_genai_prices(book: PriceBook, model: str, provider_type: str, provider_id: str,
                                            usage: TokenUsage) -> None:
    theirs = genai_prices.calc_price(genai_prices.Usage(
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cached_input_tokens, cache_write_tokens=usage.cache_write_tokens),
        model, provider_id=provider_id)
    ours = book.cost(usage, model, provider_type=provider_type)
    assert ours.input_cost == pytest.approx(float(theirs.input_price), rel=1e-9)
    assert ours.output_cost == pytest.approx(float(theirs.output_price), rel=1e-9)
    assert ours.total_cost == pytest.approx(float(theirs.total_price), rel=1e-9)


def test_cached_write_and_reasoning_tokens_are_not_double_counted() -> None:
    book = PriceBook({"m": {"input_per_1m": 10, "output_per_1m": 40, "cached_input_per_1m": 1,
                            "cache_write_per_1m": 12.5, "reasoning_per_1m": 60}})
    usage = TokenUsage(input_tokens=1_000, output_tokens=500, cached_input_tokens=600, cache_write_tokens=100,
                       reasoning_tokens=200)
    cost = book.cost(usage, "m")
    assert cost.input_cost == pytest.approx((300 * 10 + 600 * 1 + 100 * 12.5) / M)
    assert cost.output_cost == pytest.approx((300 * 40 + 200 * 60) / M)
    assert cost.source == "config override: pricing.m"
    plain = PriceBook({"m": {"input_per_1m": 10, "output_per_1m": 40}}).cost(usage, "m")
    assert plain.input_cost == pytest.approx(1_000 * 10 / M)  # no cache prices: cached tokens at the input rate
    assert plain.output_cost == pytest.approx(500 * 40 / M)  # reasoning is part of the output, once


def test_anthropic_one_hour_cache_writes_cost_more(book: PriceBook) -> None:
    raw = {"cache_creation": {"ephemeral_1h_input_tokens": 1_000, "ephemeral_5m_input_tokens": 1_000}}
    usage = TokenUsage(input_tokens=2_000, output_tokens=0, cache_write_tokens=2_000, raw=raw)
    cost = book.cost(usage, "claude-sonnet-4-5", provider_type="anthropic")
    assert cost.input_cost == pytest.approx((1_000 * 3.75 + 1_000 * 6.0) / M)


def test_config_overrides_beat_the_price_source() -> None:
    from spoon_llm.config.models import SpoonConfig

    config = SpoonConfig.model_validate({"pricing": {
        "gpt-4o": {"input_per_1m": 1.0, "output_per_1m": 2.0},
        "work/gpt-4o": {"input_per_1m": 0.5, "output_per_1m": 0.5}}})
    book = PriceBook.from_config(config)
    usage = TokenUsage(input_tokens=M, output_tokens=M)
    assert book.cost(usage, "gpt-4o", provider_type="openai", provider="openai").total_cost == 3.0
    assert book.cost(usage, "gpt-4o", provider_type="openai", provider="work").total_cost == 1.0
    book.set_override("gpt-4o", None)
    assert book.cost(usage, "gpt-4o", provider_type="openai", provider="openai").total_cost == 12.5


def test_unknown_models_are_unpriced_with_one_warning(book: PriceBook, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "spoon_llm.pricing")
    usage = TokenUsage(input_tokens=10, output_tokens=10)
    for _ in range(3):
        cost = book.cost(usage, "no-such-model-xyz", provider_type="openai", provider="openai")
        assert cost.unpriced and cost.source == "unpriced" and cost.total_cost == 0
    assert len([r for r in caplog.records if "no-such-model-xyz" in r.getMessage()]) == 1
    assert book.status()["unpriced_models"] == ["openai/no-such-model-xyz"]
    # An endpoint of unknown type is never guessed from the model name alone.
    assert book.cost(usage, "gpt-4o", provider_type="openai_compatible",
                     base_url="http://127.0.0.1:9/v1").unpriced


def test_local_models_are_free_and_zero_cost_deployments_are_known(book: PriceBook) -> None:
    cost = book.cost(TokenUsage(input_tokens=100, output_tokens=100), "llama3", provider_type="ollama")
    assert cost.total_cost == 0 and not cost.unpriced and "self-hosted" in (cost.source or "")
    assert book.is_free("llama3", "ollama")
    assert not book.is_free("gpt-4o", "openai")
    assert book.is_free("Qwen/Qwen2.5-7B-Instruct", "vllm", hourly_rate=1.2)


def test_hourly_rate_is_attributed_pro_rata_to_requests() -> None:
    now = [0.0]
    meter = HourlyMeter(1.2, clock=lambda: now[0])
    now[0] = 1800.0
    assert meter.charge() == pytest.approx(0.6)
    now[0] = 2700.0
    assert meter.charge() == pytest.approx(0.3)
    assert meter.charge() == 0.0  # a request at the same moment adds no uptime
    assert meter.attributed == pytest.approx(meter.uptime_cost()) == pytest.approx(0.9)

    clock = [0.0]
    book = PriceBook(clock=lambda: clock[0])
    first = book.cost(None, "qwen", provider_type="vllm", deployment="gpu", hourly_rate=3.6)
    clock[0] = 10.0
    second = book.cost(None, "qwen", provider_type="vllm", deployment="gpu", hourly_rate=3.6)
    assert first.total_cost == 0.0 and second.total_cost == pytest.approx(0.01)
    assert second.source == "hourly_rate 3.6/h (uptime, pro rata)"


def test_worst_case_uses_the_dearest_rates(book: PriceBook) -> None:
    worst = book.worst_case(1_000, 2_000, "claude-sonnet-4-5", provider_type="anthropic")
    assert worst == pytest.approx((1_000 * 6.0 + 2_000 * 15) / M)  # 1-hour cache writes are the dearest input
    assert book.worst_case(1, 1, "unknown-thing", provider_type="openai") is None


def test_import_spoon_llm_loads_neither_genai_prices_nor_redis() -> None:
    code = ("import sys, spoon_llm, spoon_llm.manager; "
            "bad = [m for m in ('genai_prices', 'redis', 'tiktoken', 'toktok') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_decimal_prices_survive_conversion(book: PriceBook) -> None:
    rates = book.rates("gpt-4.1-mini", "openai")
    assert rates is not None
    assert Decimal(str(rates.base.input * M)).quantize(Decimal("0.0001")) == Decimal("0.4000")
