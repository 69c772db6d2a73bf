"""What to do after an error (retry, fall back, fail) and how long to wait before a retry."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum

from ..errors import (
    AuthenticationError,
    ContentFilterError,
    InvalidRequestError,
    LLMError,
    ModelNotFoundError,
    NetworkError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseParsingError,
    TokenLimitError,
)

__all__ = ["Action", "ErrorPolicy", "backoff_delay"]


class Action(str, Enum):
    """What the manager does after a failed attempt."""

    RETRY = "retry"  # the same deployment again, after a backoff
    FALLBACK = "fallback"  # the next candidate
    CONTEXT_FALLBACK = "context_fallback"  # the route's larger-context route, else the next candidate
    FAIL = "fail"  # stop and raise


def _default_actions() -> dict[type[LLMError], Action]:
    # Most specific classes first: the first isinstance match wins.
    return {
        TokenLimitError: Action.CONTEXT_FALLBACK,
        ContentFilterError: Action.FAIL,
        InvalidRequestError: Action.FAIL,
        AuthenticationError: Action.FALLBACK,
        ModelNotFoundError: Action.FALLBACK,
        RateLimitError: Action.RETRY,
        ProviderUnavailableError: Action.RETRY,
        NetworkError: Action.RETRY,
        ResponseParsingError: Action.RETRY,
        ProviderError: Action.FALLBACK,
    }


@dataclass
class ErrorPolicy:
    """Per error class: retry the same deployment, fall back, or fail. Configurable per manager.

    Defaults: 429, 5xx, 529, timeouts, connection and parsing errors are retried with backoff; authentication
    failures and unknown models fall to the next candidate (and a failed key leaves rotation); a context overflow
    moves to the route's ``context_fallback``; invalid requests and content-policy refusals fail at once
    (set ``actions[ContentFilterError] = Action.FALLBACK`` to try elsewhere).

    Example::

        policy = ErrorPolicy(max_retries=2)
        policy.actions[ContentFilterError] = Action.FALLBACK
    """

    max_retries: int = 3
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    #: A Retry-After longer than this is not waited for: the next candidate is tried instead.
    max_retry_after: float = 60.0
    jitter: bool = True
    actions: dict[type[LLMError], Action] = field(default_factory=_default_actions)

    def action_for(self, error: BaseException) -> Action:
        """The action for ``error``; errors outside our tree fail (they are bugs, not provider trouble)."""
        for cls, action in self.actions.items():
            if isinstance(error, cls):
                if action is Action.RETRY and isinstance(error, ProviderError) and not error.retryable:
                    return Action.FALLBACK
                return action
        return Action.FAIL


def backoff_delay(policy: ErrorPolicy, retry_number: int, retry_after: float | None,
                  rng: random.Random | None = None, initial: float | None = None) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based).

    Exponential backoff with full jitter (``uniform(0, initial * 2**(n-1))``, capped at ``max_backoff``); a
    server's Retry-After is a floor, since waiting less than asked only earns another 429. ``initial`` (a
    provider's own ``retry_delay``) replaces the policy's ``initial_backoff``.
    """
    first = policy.initial_backoff if initial is None else initial
    ceiling = min(policy.max_backoff, first * (2 ** (retry_number - 1)))
    delay = (rng or random).uniform(0, ceiling) if policy.jitter else ceiling
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
