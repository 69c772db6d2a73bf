"""How provider requests travel: the native transport (aiohttp + orjson) and what every transport shares.

Providers are split in two layers: the **wire mapping** (pure functions: our request -> vendor JSON, vendor JSON /
SSE events / error bodies -> our response, chunks and errors) and a **transport** that moves the bytes. This
package holds the transport side that is ours:

* :mod:`._native` -- :class:`NativeClient`: one aiohttp session and connector per deployment (pool size and
  keep-alive from the configuration, timeouts honoured), transport failures mapped to our errors;
* :mod:`._sse` -- :class:`SSEParser`: server-sent events framed from raw bytes, each event's data handed on once,
  undecoded (used by the SDK path too, so both transports frame streams identically);
* :mod:`._json` -- ``dumps``/``loads``: orjson with a standard-library fallback that keeps its results;
* :mod:`._config` -- which transport a deployment uses (``transport = "native" | "sdk" | "aiohttp"``).

Importing this package is cheap: aiohttp is imported only by :func:`load_native`, which providers call off the
event loop when a deployment on the native transport is initialised.
"""

from ._config import NATIVE_EXTRA, NativeSettings, load_native, merge_headers, resolve_transport, user_agent
from ._json import dumps, loads
from ._sse import SSEParser, TextSSEParser

__all__ = [
    "NATIVE_EXTRA",
    "NativeSettings",
    "SSEParser",
    "TextSSEParser",
    "dumps",
    "load_native",
    "loads",
    "merge_headers",
    "resolve_transport",
    "user_agent",
]
