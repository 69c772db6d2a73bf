"""The gateway: ``spoon-llm serve``, an OpenAI- and Anthropic-compatible HTTP server over :class:`LLMManager`.

Install the extra (``pip install "spoon-llm[server]"``) and run ``spoon-llm serve --config spoon_llm.toml``.
The inference routes run on a raw ASGI app (uvicorn with httptools and uvloop, orjson), not a web framework,
because per-request CPU is what a Python gateway spends most on.

Importing this package is cheap: names are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._settings import ServerSettings
    from .app import GatewayApp, create_app

__all__ = ["GatewayApp", "ServerSettings", "create_app"]

_LOCATIONS = {
    "GatewayApp": ".app",
    "ServerSettings": "._settings",
    "create_app": ".app",
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LOCATIONS)
