"""Scripted answers: what the simulator says instead of its default echo reply.

A test queues :class:`Reply` objects per vendor (and optionally per model) with
``ProviderSimulator.script``; each matching chat request takes the first matching entry.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

VENDORS = ("openai", "anthropic", "gemini", "openrouter", "deepseek", "openai_responses",
           # Azure OpenAI and the OpenAI-compatible presets (testing/_azure.py, testing/_compat.py)
           "azure", "mistral", "groq", "xai", "cerebras", "together", "fireworks", "perplexity", "lmstudio",
           "llamacpp", "sglang", "tgi",
           "vertex", "vertex_anthropic", "bedrock")
# vLLM and other OpenAI-compatible servers are reached through the OpenAI routes.
_VENDOR_ALIASES = {"vllm": "openai", "google": "gemini"}


def check_vendor(vendor: str | None) -> str | None:
    """Return the canonical vendor name (``None`` = every vendor); reject unknown names early."""
    if vendor is None:
        return None
    name = _VENDOR_ALIASES.get(vendor, vendor)
    if name not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; expected one of {', '.join(VENDORS)} or None")
    return name


@dataclass(frozen=True)
class ToolCall:
    """A tool (function) call the simulated model makes.

    ``arguments`` is a mapping (sent as JSON) or a raw string sent exactly as given, so a test can
    serve arguments that are not valid JSON. ``id`` defaults to a vendor-style generated id.
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts to report; every ``None`` field is estimated (about 4 characters per token).

    Counts use one meaning for every vendor and are translated to the vendor's fields:
    ``input_tokens`` is the whole prompt including cached tokens, ``output_tokens`` the whole
    completion including reasoning tokens (Anthropic's ``input_tokens`` and Gemini's
    ``candidatesTokenCount`` are derived by subtraction, as those APIs report them).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``text=None`` means the default echo text when there are no tool calls and no text otherwise.
    ``finish_reason`` may be the vendor's own value (``"end_turn"``, ``"MAX_TOKENS"``) or a
    normalised one (``"stop"``, ``"length"``, ``"tool_calls"``, ``"content_filter"``), which is
    translated per vendor; by default it is ``"tool_calls"`` when there are tool calls, else
    ``"stop"``. ``chunks`` optionally fixes how the text is split into stream deltas.
    """

    text: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    reasoning: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    chunks: Sequence[str] | None = None


class _Entry:
    __slots__ = ("vendor", "model", "reply", "remaining")

    def __init__(self, vendor: str | None, model: str | None, reply: Reply, remaining: int | None) -> None:
        self.vendor = vendor
        self.model = model
        self.reply = reply
        self.remaining = remaining


class ScriptBook:
    """Queue of scripted replies, consumed in the order they were added (thread-safe)."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._lock = threading.Lock()

    def add(self, vendor: str | None, reply: Reply | str, model: str | None, times: int | None) -> None:
        """Queue ``reply``; ``times=None`` keeps it for every later matching request."""
        if isinstance(reply, str):
            reply = Reply(text=reply)
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._entries.append(_Entry(check_vendor(vendor), model, reply, times))

    def take(self, vendor: str, model: str | None) -> Reply | None:
        """Return (and use up one turn of) the first entry matching ``vendor`` and ``model``."""
        if not self._entries:  # the common case, checked without the lock
            return None
        with self._lock:
            for i, entry in enumerate(self._entries):
                if (entry.vendor is None or entry.vendor == vendor) and (entry.model is None or entry.model == model):
                    if entry.remaining is not None:
                        entry.remaining -= 1
                        if entry.remaining <= 0:
                            del self._entries[i]
                    return entry.reply
        return None

    def clear(self) -> None:
        """Forget every queued reply."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
