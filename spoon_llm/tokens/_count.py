"""Counting the tokens of texts, chat messages and tool definitions, exactly where possible.

Chat overhead follows OpenAI's published recipe (cookbook "How to count tokens with tiktoken"): 3 tokens per
message, 1 more for a ``name``, 3 to prime the reply; tools follow the cookbook's ``num_tokens_for_tools``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..types import ImagePart, Message, MessageInput, TextPart, ToolSpec, to_messages, to_tool_specs
from ._encodings import encoding_for_model, get_tokenizer
from ._estimate import DOCUMENT_TOKENS, IMAGE_TOKENS, IMAGE_TOKENS_LOW, estimate_text

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TokenCount", "count_messages", "count_text", "count_tools", "estimate_messages"]

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


@dataclass(frozen=True, slots=True)
class TokenCount:
    """A token count and how it was obtained.

    ``exact`` is True only when every part was counted by the model's own tokenizer (or the provider's count
    endpoint); otherwise ``tokens`` is the documented estimate. ``method`` names the source, e.g.
    ``"tiktoken/o200k_base"``, ``"toktok/o200k_base"``, ``"estimate"`` or ``"anthropic count_tokens"``.
    """

    tokens: int
    exact: bool
    method: str

    def __int__(self) -> int:
        return self.tokens


def _counter(model: str | None) -> tuple[Callable[[str], int], bool, str]:
    encoding = encoding_for_model(model)
    if encoding is not None:
        tokenizer = get_tokenizer(encoding)
        if tokenizer is not None:
            return tokenizer[0], True, tokenizer[1]
    return estimate_text, False, "estimate"


def count_text(text: str, model: str | None = None) -> TokenCount:
    """Tokens of one text for ``model``: exact for OpenAI-family models with a local tokenizer, else estimated."""
    count, exact, method = _counter(model)
    return TokenCount(count(text), exact, method)


def _tool_lines(tool: ToolSpec) -> Iterable[tuple[str, int]]:
    # (text to tokenise, fixed overhead) pairs of the cookbook's num_tokens_for_tools.
    description = (tool.description or "").rstrip(".")
    yield f"{tool.name}:{description}", 0
    properties = tool.parameters.get("properties") or {}
    if properties:
        yield "", 3  # prop_init
    for key, spec in properties.items():
        spec = spec if isinstance(spec, Mapping) else {}
        yield "", 3  # prop_key
        for item in spec.get("enum") or ():
            yield str(item), 3  # enum_item
        if spec.get("enum"):
            yield "", -3  # enum_init
        p_description = str(spec.get("description") or "").rstrip(".")
        yield f"{key}:{spec.get('type', '')}:{p_description}", 0


def _tools_tokens(tools: Sequence[ToolSpec], count: Callable[[str], int], model: str | None) -> int:
    if not tools:
        return 0
    func_init = 10 if (encoding_for_model(model) == "cl100k_base") else 7
    total = 12  # func_end
    for tool in tools:
        total += func_init
        for text, overhead in _tool_lines(tool):
            total += overhead + (count(text) if text else 0)
    return total


def count_tools(tools: Sequence[ToolSpec | Mapping[str, Any]], model: str | None = None) -> TokenCount:
    """Tokens that tool definitions add to a request (OpenAI cookbook formula; estimated for other models)."""
    count, exact, method = _counter(model)
    return TokenCount(_tools_tokens(to_tool_specs(tools), count, model), exact, method)


def _message_tokens(message: Message, count: Callable[[str], int]) -> tuple[int, bool]:
    total = TOKENS_PER_MESSAGE + count(message.role)
    approximate = False
    content = message.content
    if isinstance(content, str):
        total += count(content)
    elif content:
        for part in content:
            if isinstance(part, TextPart):
                total += count(part.text)
            elif isinstance(part, ImagePart):
                total += IMAGE_TOKENS_LOW if part.detail == "low" else IMAGE_TOKENS
                approximate = True
            else:
                total += DOCUMENT_TOKENS
                approximate = True
    if message.name:
        total += TOKENS_PER_NAME + count(message.name)
    for call in message.tool_calls or ():
        total += count(call.function.name) + count(call.function.arguments) + TOKENS_PER_MESSAGE
        approximate = True  # no published recipe for tool calls in history
    return total, approximate


def count_messages(messages: str | MessageInput | Sequence[MessageInput], model: str | None = None, *,
                   tools: Sequence[ToolSpec | Mapping[str, Any]] | None = None) -> TokenCount:
    """Input tokens of a chat request: messages with their per-message overhead, reply priming and tools.

    Exact for OpenAI-family models when a local tokenizer is installed (extra ``tokens``) and the request has
    only text; otherwise the estimate, flagged ``exact=False``.
    """
    count, exact, method = _counter(model)
    total = REPLY_PRIMING
    for message in to_messages(messages):
        tokens, approximate = _message_tokens(message, count)
        total += tokens
        exact = exact and not approximate
    total += _tools_tokens(to_tool_specs(tools), count, model)
    return TokenCount(total, exact, method if exact else ("estimate" if method == "estimate" else
                                                          f"{method}+estimate"))


def _estimate_part(part: Any) -> int:
    if isinstance(part, TextPart):
        return estimate_text(part.text)
    if isinstance(part, ImagePart):
        return IMAGE_TOKENS
    if isinstance(part, Mapping):
        kind = part.get("type")
        if kind in ("text", "input_text"):
            return estimate_text(str(part.get("text") or ""))
        if kind in ("image", "image_url", "input_image"):
            return IMAGE_TOKENS
    if isinstance(part, str):
        return estimate_text(part)
    return DOCUMENT_TOKENS


def estimate_messages(messages: Sequence[Message | Mapping[str, Any]] | None, tools: Sequence[Any] | None = None
                      ) -> int:
    """The cheap estimate of a request's input tokens, for reservations on the hot path (no tokenizer).

    Takes messages or plain dicts as callers pass them, so the hot path never has to validate a conversation.
    """
    total = REPLY_PRIMING
    per_message = TOKENS_PER_MESSAGE + 1
    for message in messages or ():
        total += per_message
        if isinstance(message, Message):  # concrete classes first: an ABC check costs more per message
            content: Any = message.content
            calls: Any = message.tool_calls
        elif type(message) is dict or isinstance(message, Mapping):
            content, calls = message.get("content"), message.get("tool_calls")
        else:
            content, calls = message.content, message.tool_calls
        if isinstance(content, str):
            # estimate_text, inlined for the common ASCII message
            total += (len(content) + 3) // 4 if content.isascii() else estimate_text(content)
        elif content:
            for part in content:
                total += _estimate_part(part)
        for call in calls or ():
            function = call.get("function") or {} if isinstance(call, Mapping) else call.function
            if isinstance(function, Mapping):
                name, arguments = str(function.get("name") or ""), str(function.get("arguments") or "")
            else:
                name, arguments = function.name, function.arguments
            total += estimate_text(name) + estimate_text(arguments) + 3
    if tools:
        total += estimate_text(json.dumps([t.model_dump() if isinstance(t, ToolSpec) else t for t in tools],
                                          default=str))
    return total
