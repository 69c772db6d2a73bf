"""``PriceBook``: the price of every request, with where the price came from.

Order of precedence for a model: a price override from the configuration (``[pricing."model"]`` or
``[pricing."provider/model"]``), then the deployment's ``hourly_rate`` (self-hosted GPUs), then free for local
runtimes (Ollama, vLLM without an hourly rate), then genai-prices' bundled data. A model none of these knows
gets an explicit ``unpriced`` cost and one warning per model, never a silent zero.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._trusted import build_trusted
from ..types import CostInfo
from ._genai import GenaiPrices
from ._hourly import HourlyMeter
from ._rates import Rates, TokenPrices

if TYPE_CHECKING:
    from ..config.models import PricingOverride, SpoonConfig
    from ..types import TokenUsage

__all__ = ["LOCAL_PROVIDER_TYPES", "PriceBook"]

logger = logging.getLogger("spoon_llm.pricing")

#: Provider types that run models on the user's own hardware: free per token unless given an hourly rate.
LOCAL_PROVIDER_TYPES = frozenset({"ollama", "vllm", "lmstudio", "llamacpp", "sglang", "tgi"})

_FREE = Rates(TokenPrices(0.0, 0.0), "self-hosted (no hourly_rate: free per token)")

_PRICED_FIELDS = frozenset({"input_cost", "output_cost", "total_cost", "currency", "source"})


def priced_cost(input_cost: float, output_cost: float, currency: str, source: str) -> CostInfo:
    """``CostInfo(input_cost=..., output_cost=..., total_cost=..., currency=..., source=...)``, about twice as fast.

    The values are floats and strings computed here, so validation has nothing to check (see
    :func:`~spoon_llm._trusted.build_trusted`).
    """
    if type(input_cost) is not float or type(output_cost) is not float:
        input_cost, output_cost = float(input_cost), float(output_cost)  # what validation would have made
    return build_trusted(CostInfo, {"input_cost": input_cost, "output_cost": output_cost,
                                    "total_cost": input_cost + output_cost, "currency": currency, "source": source,
                                    "unpriced": False}, _PRICED_FIELDS)


def _override_rates(override: PricingOverride | Mapping[str, Any], name: str) -> Rates:
    data = override if isinstance(override, Mapping) else override.model_dump()
    prices = TokenPrices.per_million(
        data["input_per_1m"], data["output_per_1m"], cached_input=data.get("cached_input_per_1m"),
        cache_write=data.get("cache_write_per_1m"), reasoning=data.get("reasoning_per_1m"))
    return Rates(prices, f"config override: pricing.{name}", str(data.get("currency") or "USD"))


class PriceBook:
    """Resolves and caches per-model rates; computes :class:`~spoon_llm.types.CostInfo` in a few microseconds.

    ``overrides`` maps a model name (or ``provider/model``) to a :class:`~spoon_llm.config.models.PricingOverride`
    or a dict with the same keys. ``use_genai_prices=False`` disables the built-in price source. genai-prices
    rates are re-read every ``refresh`` seconds (some vendors price by time of day).
    """

    def __init__(self, overrides: Mapping[str, PricingOverride | Mapping[str, Any]] | None = None, *,
                 use_genai_prices: bool = True, refresh: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._overrides = {name: _override_rates(o, name) for name, o in (overrides or {}).items()}
        self._genai = GenaiPrices() if use_genai_prices else None
        self._refresh = refresh
        self._clock = clock
        self._cache: dict[tuple[str | None, str | None, str, str | None], tuple[Rates | None, float]] = {}
        self._by_deployment: dict[tuple[str, str | None], tuple[Rates | None, float]] = {}
        self._meters: dict[str, HourlyMeter] = {}
        self._warned: set[tuple[str | None, str]] = set()
        self.unpriced_models: set[str] = set()

    @classmethod
    def from_config(cls, config: SpoonConfig, **options: Any) -> PriceBook:
        """A price book with the configuration's ``[pricing]`` overrides."""
        return cls(config.pricing, **options)

    def set_override(self, model: str, prices: PricingOverride | Mapping[str, Any] | None) -> None:
        """Set (or with ``None`` remove) a price override at run time."""
        if prices is None:
            self._overrides.pop(model, None)
        else:
            self._overrides[model] = _override_rates(prices, model)
        self._cache.clear()
        self._by_deployment.clear()

    # -- resolution -------------------------------------------------------------------------------------------

    def rates(self, model: str | None, provider_type: str | None = None, *, provider: str | None = None,
              base_url: str | None = None) -> Rates | None:
        """The rates for ``model`` served by ``provider`` (a config section) of ``provider_type``.

        ``None`` when no source knows the model.
        """
        key = (provider, provider_type, model or "", base_url)
        hit = self._cache.get(key)
        now = self._clock()
        if hit is not None and hit[1] > now:
            return hit[0]
        rates, ttl = self._resolve(model, provider_type, provider, base_url)
        self._cache[key] = (rates, now + ttl)
        return rates

    def for_deployment(self, deployment: Any, model: str | None) -> Rates | None:
        """The rates for ``model`` on a deployment (hot path: one dict lookup once resolved)."""
        key = (deployment.name, model)
        hit = self._by_deployment.get(key)
        if hit is not None and hit[1] > self._clock():
            return hit[0]
        rates = self.rates(model, deployment.provider_type, provider=deployment.provider_name,
                           base_url=deployment.deployment.base_url)
        cached = self._cache[(deployment.provider_name, deployment.provider_type, model or "",
                              deployment.deployment.base_url)]
        self._by_deployment[key] = cached
        return rates

    def cost_with(self, rates: Rates | None, usage: TokenUsage | None, model: str | None = None,
                  provider: str | None = None) -> CostInfo:
        """The cost of ``usage`` at already-resolved ``rates`` (``None``: unpriced, warned once per model)."""
        if rates is None:
            self._warn_unpriced(provider, model or "")
            return CostInfo(source="unpriced", unpriced=True)
        if usage is None:
            return CostInfo(currency=rates.currency, source=rates.source)
        input_cost, output_cost = rates.split(usage, _cache_write_1h(usage) if usage.raw else 0)
        return priced_cost(input_cost, output_cost, rates.currency, rates.source)

    def _resolve(self, model: str | None, provider_type: str | None, provider: str | None,
                 base_url: str | None) -> tuple[Rates | None, float]:
        forever = float("inf")
        if model:
            for name in (f"{provider}/{model}" if provider else None, model, model.lower()):
                if name is not None and name in self._overrides:
                    return self._overrides[name], forever
        if provider_type in LOCAL_PROVIDER_TYPES:
            return _FREE, forever
        if model and self._genai is not None:
            record = self._genai.match(model, provider_type, base_url)
            if record is not None:
                return self._genai.rates(record), self._refresh
        return None, forever

    def is_free(self, model: str | None, provider_type: str | None = None, *, provider: str | None = None,
                base_url: str | None = None, hourly_rate: float | None = None) -> bool:
        """True when a request costs nothing extra.

        That is local models, zero-priced models, and hourly-rate deployments (whose uptime is paid whether or
        not they are called).
        """
        if hourly_rate:
            return True
        rates = self.rates(model, provider_type, provider=provider, base_url=base_url)
        return rates is not None and rates.free

    # -- costing ----------------------------------------------------------------------------------------------

    def cost(self, usage: TokenUsage | None, model: str | None, *, provider_type: str | None = None,
             provider: str | None = None, base_url: str | None = None, deployment: str | None = None,
             hourly_rate: float | None = None) -> CostInfo:
        """What a request with ``usage`` cost, and the provenance of its price."""
        if hourly_rate:
            meter = self.meter(deployment or provider or "", hourly_rate)
            charged = meter.charge()
            return CostInfo(input_cost=0.0, output_cost=charged, total_cost=charged,
                            source=f"hourly_rate {hourly_rate}/h (uptime, pro rata)")
        rates = self.rates(model, provider_type, provider=provider, base_url=base_url)
        if rates is None:
            self._warn_unpriced(provider or provider_type, model or "")
            return CostInfo(source="unpriced", unpriced=True)
        if usage is None:
            return CostInfo(currency=rates.currency, source=rates.source)
        cache_1h = _cache_write_1h(usage)
        input_cost, output_cost = rates.split(usage, cache_1h)
        return CostInfo(input_cost=input_cost, output_cost=output_cost, total_cost=input_cost + output_cost,
                        currency=rates.currency, source=rates.source)

    def worst_case(self, input_tokens: int, output_tokens: int, model: str | None, *,
                   provider_type: str | None = None, provider: str | None = None,
                   base_url: str | None = None) -> float | None:
        """The most a request can cost, or ``None`` when the model is unpriced."""
        rates = self.rates(model, provider_type, provider=provider, base_url=base_url)
        return None if rates is None else rates.worst_case(input_tokens, output_tokens)

    def meter(self, deployment: str, rate: float) -> HourlyMeter:
        """The uptime meter of an hourly-priced deployment (created on first use)."""
        meter = self._meters.get(deployment)
        if meter is None or meter.rate != rate:
            meter = self._meters[deployment] = HourlyMeter(rate, clock=self._clock)
        return meter

    def _warn_unpriced(self, provider: str | None, model: str) -> None:
        key = (provider, model)
        if key in self._warned:
            return
        self._warned.add(key)
        self.unpriced_models.add(f"{provider}/{model}" if provider else model)
        try:
            logger.warning("no price known for model %r of %r: its requests are recorded as unpriced (cost "
                           'unknown, not zero); add [pricing."%s"] to the configuration or install '
                           "spoon-llm[prices]", model, provider, model)
        except Exception:  # a log handler that raises must not fail the request being priced
            pass

    def status(self) -> dict[str, Any]:
        """Price sources in use and models without a price."""
        genai = self._genai
        return {
            "overrides": sorted(self._overrides),
            "genai_prices": (genai.version or "not loaded yet") if genai is not None and genai.available else None,
            "unpriced_models": sorted(self.unpriced_models),
            "hourly": {name: {"rate": m.rate, "uptime_cost": m.uptime_cost(), "attributed": m.attributed,
                              "requests": m.requests} for name, m in self._meters.items()},
        }


def _cache_write_1h(usage: TokenUsage) -> int:
    # Anthropic splits cache writes by lifetime; the 1-hour ones cost more.
    raw = usage.raw
    if not raw or not usage.cache_write_tokens:
        return 0
    creation = raw.get("cache_creation")
    if isinstance(creation, Mapping):
        value = creation.get("ephemeral_1h_input_tokens")
        if isinstance(value, int):
            return value
    return 0
