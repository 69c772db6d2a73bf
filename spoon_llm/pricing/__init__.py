"""Prices: per-model rates from genai-prices, configuration overrides and hourly rates, with provenance.

Example::

    from spoon_llm.pricing import PriceBook

    book = PriceBook()
    info = book.cost(response.usage, "gpt-4o", provider_type="openai")
    info.total_cost, info.source          # 0.00125, "genai-prices 0.2.3: gpt-4o"

genai-prices (extra ``prices``) is imported on the first lookup, never by ``import spoon_llm``, and its network
update is never started: prices come from the data bundled with the installed version.
"""

from __future__ import annotations

from ._hourly import HourlyMeter
from ._rates import Rates, TokenPrices
from .book import LOCAL_PROVIDER_TYPES, PriceBook

__all__ = ["LOCAL_PROVIDER_TYPES", "HourlyMeter", "PriceBook", "Rates", "TokenPrices"]
