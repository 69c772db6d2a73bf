"""Per-token rates of one model and the arithmetic that turns usage into money, without double counting.

Usage follows :class:`~spoon_llm.types.TokenUsage`: ``input_tokens`` includes cache reads and cache writes,
``output_tokens`` includes reasoning. So cache reads and writes are taken *out* of the plain input before
pricing, and reasoning is taken out of the plain output only when it has a price of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..types import TokenUsage

__all__ = ["Rates", "TokenPrices"]

PER_MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """Prices per token (not per million) for each kind of token; ``None`` means "as plain input/output"."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    cache_write_1h: float | None = None
    reasoning: float | None = None

    @classmethod
    def per_million(cls, input: float, output: float, *, cached_input: float | None = None,
                    cache_write: float | None = None, cache_write_1h: float | None = None,
                    reasoning: float | None = None) -> TokenPrices:
        """Build from prices per million tokens, as vendors publish them."""

        def scale(value: float | None) -> float | None:
            return None if value is None else float(value) / PER_MILLION

        return cls(float(input) / PER_MILLION, float(output) / PER_MILLION, scale(cached_input),
                   scale(cache_write), scale(cache_write_1h), scale(reasoning))

    @property
    def free(self) -> bool:
        """True when every kind of token costs nothing."""
        return not any((self.input, self.output, self.cached_input, self.cache_write, self.cache_write_1h,
                        self.reasoning))


@dataclass(frozen=True, slots=True)
class Rates:
    """A model's prices, with optional tiers chosen by the request's total input tokens.

    ``tiers`` are ``(threshold, prices)`` in ascending order: a request whose input exceeds ``threshold`` pays
    those prices for *all* its tokens (the vendors' "cliff" long-context pricing). ``source`` is provenance.
    """

    base: TokenPrices
    source: str
    currency: str = "USD"
    tiers: tuple[tuple[int, TokenPrices], ...] = field(default=())
    #: Dearest input and output rate of the base prices and whether any tier costs anything: precomputed
    #: because the budget guard asks on every request.
    worst_in: float = field(default=0.0, init=False)
    worst_out: float = field(default=0.0, init=False)
    free: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        p = self.base
        object.__setattr__(self, "worst_in", max(p.input, p.cache_write or 0.0, p.cache_write_1h or 0.0))
        object.__setattr__(self, "worst_out", max(p.output, p.reasoning or 0.0))
        object.__setattr__(self, "free", p.free and all(t.free for _, t in self.tiers))

    def prices_for(self, input_tokens: int) -> TokenPrices:
        """The prices that apply to a request with ``input_tokens`` of input."""
        chosen = self.base
        for threshold, prices in self.tiers:
            if input_tokens > threshold:
                chosen = prices
        return chosen

    def split(self, usage: TokenUsage, cache_write_1h_tokens: int = 0) -> tuple[float, float]:
        """``(input_cost, output_cost)`` of ``usage``."""
        total_in = usage.input_tokens
        if not self.tiers:
            p = self.base
            if not (usage.cached_input_tokens or usage.cache_write_tokens or usage.reasoning_tokens):
                return total_in * p.input, usage.output_tokens * p.output  # plain input and output
        else:
            p = self.prices_for(total_in)
        cached = min(usage.cached_input_tokens, total_in)
        writes = min(usage.cache_write_tokens, total_in - cached)
        long_writes = min(cache_write_1h_tokens, writes) if p.cache_write_1h is not None else 0
        plain_in = total_in - cached - writes
        input_cost = plain_in * p.input
        if cached:
            input_cost += cached * (p.input if p.cached_input is None else p.cached_input)
        if writes:
            write_rate = p.input if p.cache_write is None else p.cache_write
            input_cost += (writes - long_writes) * write_rate
            if long_writes:
                input_cost += long_writes * (p.cache_write_1h or write_rate)
        total_out = usage.output_tokens
        if p.reasoning is not None and usage.reasoning_tokens:
            reasoning = min(usage.reasoning_tokens, total_out)
            output_cost = (total_out - reasoning) * p.output + reasoning * p.reasoning
        else:
            output_cost = total_out * p.output
        return input_cost, output_cost

    def worst_case(self, input_tokens: int, output_tokens: int) -> float:
        """The most a request of this size can cost (all input uncached, all output at the dearest rate)."""
        if not self.tiers:
            return input_tokens * self.worst_in + output_tokens * self.worst_out
        p = self.prices_for(input_tokens)
        in_rate = max(p.input, p.cache_write or 0.0, p.cache_write_1h or 0.0)
        out_rate = max(p.output, p.reasoning or 0.0)
        return input_tokens * in_rate + output_tokens * out_rate
