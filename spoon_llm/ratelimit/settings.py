"""The limits of one deployment (API key) and how to enforce them, read from the configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..config.models import ProviderConfig, RateLimitConfig

__all__ = ["LimitSettings", "Strategy"]

Strategy = Literal["sliding_window", "token_bucket", "leaky_bucket"]


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Limits of one deployment. ``None`` means unlimited.

    ``rpm``/``rph``: requests per minute/hour; ``tpm``: input+output tokens per minute; ``input_tpm`` /
    ``output_tpm``: each direction per minute; ``burst``: most requests at once (token-bucket strategies;
    defaults to the per-minute limit). ``window`` scales the minute (tests use short windows).
    """

    rpm: int | None = None
    rph: int | None = None
    tpm: int | None = None
    input_tpm: int | None = None
    output_tpm: int | None = None
    burst: int | None = None
    strategy: Strategy = "sliding_window"
    on_limit: Literal["wait", "fail"] = "wait"
    max_wait: float = 10.0
    header_pacing: bool = True
    default_cooldown: float = 1.0
    max_cooldown: float = 300.0
    window: float = 60.0

    @property
    def limited(self) -> bool:
        """True when any local limit is set."""
        return any(v is not None for v in (self.rpm, self.rph, self.tpm, self.input_tpm, self.output_tpm))

    @classmethod
    def from_config(cls, provider: ProviderConfig, policy: RateLimitConfig | None = None) -> LimitSettings:
        """Limits of a provider section narrowed to one deployment (``rpm``/``tpm`` may be per key)."""
        extra = {}
        if policy is not None:
            extra = {"strategy": policy.strategy, "on_limit": policy.on_limit, "max_wait": policy.max_wait,
                     "header_pacing": policy.header_pacing, "default_cooldown": policy.default_cooldown,
                     "max_cooldown": policy.max_cooldown}
        return cls(rpm=provider.rpm, rph=provider.rph, tpm=provider.tpm, input_tpm=provider.input_tpm,
                   output_tpm=provider.output_tpm, burst=provider.burst, **extra)  # type: ignore[arg-type]
