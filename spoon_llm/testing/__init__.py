"""Test helpers for spoon-llm users and for spoon-llm itself: the provider simulator.

:class:`ProviderSimulator` is a local HTTP server (127.0.0.1) that speaks the OpenAI,
Anthropic, Gemini, OpenRouter, DeepSeek and vLLM wire formats, with scripted replies, injected
faults, replay of recorded interactions and a log of what it received::

    from spoon_llm.testing import Fault, ProviderSimulator, Reply

    with ProviderSimulator() as sim:
        sim.script("openai", Reply(text="hello"))
        sim.fault("anthropic", Fault.rate_limited(retry_after=2))
        ...  # point a client at sim.openai_base_url / sim.anthropic_base_url / ...

Importing this package is cheap: names are loaded on first use, and ``httptools`` (extra
``testing``) only when a server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._answers import ECHO_PREFIX
    from ._faults import Fault
    from ._records import RecordedRequest
    from ._replay import ConformanceCase, find_conformance_dir, load_conformance, sse_bytes
    from ._script import Reply, ToolCall, Usage
    from ._simulator import ProviderSimulator, serve_forever
    from ._urls import VendorURLs

__all__ = [
    "ECHO_PREFIX",
    "ConformanceCase",
    "Fault",
    "ProviderSimulator",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "Usage",
    "VendorURLs",
    "find_conformance_dir",
    "load_conformance",
    "serve_forever",
    "sse_bytes",
]

_LOCATIONS = {
    "ECHO_PREFIX": "._answers",
    "ConformanceCase": "._replay",
    "Fault": "._faults",
    "ProviderSimulator": "._simulator",
    "RecordedRequest": "._records",
    "Reply": "._script",
    "ToolCall": "._script",
    "Usage": "._script",
    "VendorURLs": "._urls",
    "find_conformance_dir": "._replay",
    "load_conformance": "._replay",
    "serve_forever": "._simulator",
    "sse_bytes": "._replay",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LOCATIONS)
