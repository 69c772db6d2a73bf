"""How many tokens an attempt may use: the cheap input estimate plus the output it may produce.

Budgets and rate limits reserve this before the call; it is computed once per attempt and shared through
``ctx.tokens``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._count import estimate_messages

if TYPE_CHECKING:
    from ..middleware.base import AttemptContext

__all__ = ["DEFAULT_MAX_TOKENS", "request_tokens"]

#: Output tokens assumed for a call that sets no ``max_tokens`` anywhere.
DEFAULT_MAX_TOKENS = 4096

_OUTPUT_KWARGS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def request_tokens(ctx: AttemptContext, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[int, int]:
    """``(estimated input tokens, most output tokens)`` of the attempt (cached in ``ctx.tokens``)."""
    cached = ctx.tokens
    if cached is not None:
        return cached
    kwargs = ctx.kwargs
    output = 0
    if ctx.operation != "embed":
        if kwargs:
            for name in _OUTPUT_KWARGS:
                value = kwargs.get(name)
                if value:
                    output = int(value)
                    break
        if not output:
            output = ctx.deployment.config.max_tokens or default_max_tokens
    size = (estimate_messages(ctx.raw_messages, kwargs.get("tools") if kwargs else None), output)
    ctx.tokens = size
    return size
