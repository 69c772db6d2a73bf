"""Prices from ``genai-prices`` (extra ``prices``): imported on first lookup, never updated over the network.

genai-prices ships its price data inside the package; we only read that bundled snapshot (its ``UpdatePrices``
background fetch is never started here). Its own ``calc_price`` costs ~100 us per call, so a model is matched
once and its prices are turned into plain per-token floats (:class:`Rates`), re-read at most once a minute
because some vendors price by date or by time of day.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ._rates import Rates, TokenPrices

__all__ = ["GENAI_PROVIDER_IDS", "GenaiPrices"]

logger = logging.getLogger("spoon_llm.pricing")

#: Our provider types -> genai-prices provider ids. Types not listed are matched by base URL, if at all.
GENAI_PROVIDER_IDS = {
    "openai": "openai",
    "openai_responses": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex": "google",  # Gemini on Vertex AI: the same list prices
    "vertex_anthropic": "anthropic",  # Claude on Vertex AI: Anthropic's list prices (model ids as claude-x@date)
    "google": "google",
    "deepseek": "deepseek",
    "openrouter": "openrouter",
    "bedrock": "aws",  # genai-prices keys Bedrock's model ids (amazon.nova-lite-v1:0, us.anthropic...) under aws
    "azure": "azure",
    "mistral": "mistral",
    "groq": "groq",
    "xai": "x-ai",
    "cerebras": "cerebras",
    "together": "together",
    "fireworks": "fireworks",
    "perplexity": "perplexity",
}

_KEYS = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cached_input": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
    "reasoning": "output_reasoning_mtok",
}


class GenaiPrices:
    """Looks models up in genai-prices' bundled data; ``available`` is False when the package is missing."""

    def __init__(self) -> None:
        self._module: Any = None
        self._matches: dict[tuple[str | None, str | None, str], Any] = {}
        self.available = True
        self.version = ""

    def _load(self) -> Any:
        if self._module is None:
            try:
                import genai_prices
            except ImportError:
                self.available = False
                return None
            self._module = genai_prices
            self.version = str(getattr(genai_prices, "__version__", ""))
        return self._module

    def match(self, model: str, provider_type: str | None, base_url: str | None) -> Any:
        """genai-prices' model record for ``model`` (dated and aliased names included), or ``None``."""
        module = self._load()
        if module is None:
            return None
        provider_id = GENAI_PROVIDER_IDS.get(provider_type or "")
        ref = model.removeprefix("models/")
        key = (provider_id, None if provider_id else base_url, ref)
        if key in self._matches:
            return self._matches[key]
        kwargs: dict[str, Any] = {}
        if provider_id:
            kwargs["provider_id"] = provider_id
        elif base_url:
            kwargs["provider_api_url"] = base_url
        else:
            self._matches[key] = None  # an unknown endpoint: guessing a vendor by model name would misprice it
            return None
        try:
            found = module.calc_price(module.Usage(input_tokens=0, output_tokens=0), ref, **kwargs).model
        except (LookupError, ValueError):
            found = None
        self._matches[key] = found
        return found

    def rates(self, record: Any, when: datetime | None = None) -> Rates:
        """The record's prices in force at ``when`` (default now) as per-token :class:`Rates`."""
        price = record.get_prices(when or datetime.now(timezone.utc))
        values = {ours: getattr(price, theirs, None) for ours, theirs in _KEYS.items()}
        thresholds = sorted({tier.start for value in values.values() if _is_tiered(value)
                         for tier in getattr(value, "tiers", ())})
        base = _prices_at(values, None)
        tiers = tuple((t, _prices_at(values, t)) for t in thresholds)
        return Rates(base, f"genai-prices {self.version}: {record.id}", "USD", tiers)


def _is_tiered(value: Any) -> bool:
    return value is not None and hasattr(value, "tiers")


def _at(value: Any, threshold: int | None) -> float | None:
    if value is None:
        return None
    if _is_tiered(value):
        chosen = value.base
        if threshold is not None:
            for tier in value.tiers:
                if tier.start <= threshold:
                    chosen = tier.price
        return float(Decimal(chosen))
    return float(Decimal(value))


def _prices_at(values: dict[str, Any], threshold: int | None) -> TokenPrices:
    got = {k: _at(v, threshold) for k, v in values.items()}
    return TokenPrices.per_million(got["input"] or 0.0, got["output"] or 0.0, cached_input=got["cached_input"],
                                   cache_write=got["cache_write"], cache_write_1h=got["cache_write_1h"],
                                   reasoning=got["reasoning"])
