"""Which transport a deployment uses, and the settings of the native one, read once from its configuration.

``transport`` in a provider section picks how requests travel:

* ``"native"`` (the default): our own client over aiohttp (:mod:`._native`), JSON through orjson;
* ``"sdk"``: the vendor's official SDK on its default HTTP client (httpx2);
* ``"aiohttp"``: the OpenAI SDK on its aiohttp client (OpenAI-compatible providers; the others read it as
  ``"sdk"``).

When the section does not name a transport and aiohttp is not installed, the SDK path is used instead, so an
install with only a vendor extra (``spoon-llm[openai]``) keeps working; naming ``"native"`` without aiohttp is a
configuration error that names the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..config.models import ProviderConfig

__all__ = ["NATIVE_EXTRA", "NativeSettings", "load_native", "merge_headers", "resolve_transport", "user_agent"]

Transport = Literal["native", "sdk", "aiohttp"]
#: What to install for the native transport.
NATIVE_EXTRA = 'pip install "spoon-llm[native]"'
_log = logging.getLogger("spoon_llm.transport")


@dataclass(frozen=True)
class NativeSettings:
    """Pool and timeouts of one native client, from the provider section.

    ``timeout`` bounds a whole answer's exchange, and a stream's connecting and every read (the time to the
    response headers and between two reads of the body), as the SDKs' httpx timeouts do: a long stream is not cut
    as long as it keeps flowing. ``connect_timeout`` bounds a new connection's connect. The manager bounds whole
    requests with its own deadline.
    """

    timeout: float
    connect_timeout: float
    max_connections: int
    keepalive_expiry: float
    #: ``False``: a new connection per request (the section's ``keep_alive``).
    keep_alive: bool = True

    @classmethod
    def from_config(cls, config: ProviderConfig) -> NativeSettings:
        """The settings of ``config``."""
        return cls(
            timeout=config.timeout,
            connect_timeout=config.connect_timeout or config.timeout,
            max_connections=config.max_connections,
            keepalive_expiry=config.keepalive_expiry,
            keep_alive=config.keep_alive,
        )


def resolve_transport(config: ProviderConfig, *, sdk_injected: bool, supported: tuple[str, ...]) -> str:
    """The transport this deployment uses: ``native``, ``sdk`` or ``aiohttp`` (one of ``supported``).

    An injected SDK client or SDK HTTP transport (tests, custom auth) means the SDK path. An explicit choice of
    a transport this provider lacks falls back to ``sdk``.
    """
    wanted: str = config.transport
    if sdk_injected:
        return "sdk" if wanted == "native" else wanted
    if wanted not in supported:
        return "sdk"
    if wanted == "native" and not native_available():
        if "transport" in config.model_fields_set:
            raise ConfigurationError(
                f'transport = "native" needs aiohttp: {NATIVE_EXTRA}',
                provider=config.name or None,
                key=f"providers.{config.name}.transport",
            )
        _log.debug("aiohttp is not installed: provider %r uses its SDK", config.name)
        return "sdk"
    return wanted


def native_available() -> bool:
    """Whether aiohttp can be imported (looked up without importing it)."""
    return importlib.util.find_spec("aiohttp") is not None


def load_native() -> Any:
    """Import the native client module (and aiohttp with it, ~150 ms: call it off the event loop)."""
    return importlib.import_module("spoon_llm.transport._native")


def user_agent() -> str:
    """Our own ``User-Agent``: ``spoon-llm/<version> python/<version>``."""
    from .. import __version__

    return f"spoon-llm/{__version__} python/{platform.python_version()}"


def merge_headers(*layers: dict[str, str] | None) -> dict[str, str]:
    """Layers of headers merged case-insensitively, later layers winning (keeps the later spelling)."""
    out: dict[str, str] = {}
    names: dict[str, str] = {}
    for layer in layers:
        for name, value in (layer or {}).items():
            lowered = name.lower()
            previous = names.get(lowered)
            if previous is not None and previous != name:
                del out[previous]
            names[lowered] = name
            out[name] = value
    return out
