"""What the Anthropic and Gemini providers share: set-up of either transport, error scopes, request helpers.

* :class:`DualTransportProvider` -- the life cycle both follow: on ``initialize`` pick the transport
  (:func:`spoon_llm.transport.resolve_transport`), then either open a native client (aiohttp imported off the
  event loop) or build the vendor SDK client in a worker thread; ``cleanup`` closes what was opened.
  ``sdk_client()`` hands out the SDK client on either transport, for the vendor endpoints we do not wrap.
* :class:`ErrorScope` (from :mod:`._transport`) -- the one scope that turns what escapes an SDK call into our errors.
* :func:`stream_failure` -- the rule for a stream that broke: before any chunk reached the caller the error
  stays retryable; after, it becomes a :class:`~spoon_llm.errors.StreamInterruptedError` with the partial text.
* :func:`json_schema_of` -- the JSON schema (if any) a call's ``response_format``/``json``/``json_schema`` asks for;
  :class:`CallOptions` -- a call's transport settings; :func:`decoded_answer` -- a decoded body as the answer.
* :func:`httpx_timeout` / :func:`httpx_limits` -- the SDK clients' pool and timeouts from the configuration.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import (
    DECODE_FAULTS,
    LLMError,
    NetworkError,
    ProviderError,
    ResponseParsingError,
    StreamInterruptedError,
    malformed,
    register_secret,
)
from ..structured._schema import OutputSchema
from ..transport import NativeSettings, load_native, resolve_transport
from ..types import LLMResponse
from ._stream import StreamAccumulator
from ._transport import ErrorScope
from .base import BaseProvider

if TYPE_CHECKING:
    import httpx2

    from ..config.models import ProviderConfig
    from ..transport._native import NativeClient

__all__ = [
    "CallOptions",
    "DualTransportProvider",
    "ErrorScope",
    "decoded_answer",
    "httpx_limits",
    "httpx_timeout",
    "json_schema_of",
    "stream_failure",
    "warm_lazy_imports",
]


@dataclass
class CallOptions:
    """Transport settings of one call (not part of the JSON body)."""

    model: str
    timeout: float | None = None
    headers: dict[str, str] | None = None


def decoded_answer(decode: Callable[..., LLMResponse], data: Any, *, request_id: str | None, provider: str,
                   model: str, started: float) -> LLMResponse:
    """``decode(data, request_id=...)`` as the call's answer: model filled in, duration measured.

    A body of an unexpected shape (fields of the wrong type included: pydantic's ``ValidationError`` is a
    ``ValueError``) is a :class:`~spoon_llm.errors.ResponseParsingError` quoting it.
    """
    try:
        result = decode(data, request_id=request_id)
    except DECODE_FAULTS as exc:
        raise malformed("the answer", data, exc, provider=provider, model=model) from exc
    if not result.model:
        result.model = model
    result.duration = time.perf_counter() - started
    return result


def json_schema_of(response_format: Any, json_flag: Any, json_schema: Any,
                   vendor: str | None = None) -> tuple[dict[str, Any] | None, bool]:
    """The JSON schema the answer must follow (if any) and whether JSON output was asked for at all.

    Accepts OpenAI's ``response_format`` (``json_object`` / ``json_schema``), ``json=True`` and
    ``json_schema=`` as a dict or a pydantic model class. A typed request's
    :class:`~spoon_llm.structured.OutputSchema` gives the form ``vendor`` (``"anthropic"``, ``"gemini"``) wants;
    ``None`` as the schema with JSON wanted means the vendor cannot constrain to it (ask by instruction).
    """
    if isinstance(response_format, OutputSchema):
        if vendor == "anthropic":
            return response_format.anthropic(), True
        return response_format.gemini() if vendor == "gemini" else response_format.schema, True
    schema: Any = json_schema
    wanted = bool(json_flag) or json_schema is not None
    if isinstance(response_format, Mapping):
        kind = response_format.get("type")
        if kind == "json_schema":
            inner = response_format.get("json_schema")
            schema = inner.get("schema") if isinstance(inner, Mapping) else response_format.get("schema")
            wanted = True
        elif kind == "json_object":
            wanted = True
    elif response_format is not None and hasattr(response_format, "model_json_schema"):
        schema, wanted = response_format, True
    if schema is not None and hasattr(schema, "model_json_schema"):
        schema = schema.model_json_schema()
    return (dict(schema) if isinstance(schema, Mapping) else None), wanted


def stream_failure(mapped: LLMError, acc: StreamAccumulator, provider: str, model: str) -> LLMError:
    """``mapped`` as the caller should see it once ``acc`` has (or has not) delivered chunks.

    A network failure or an undecodable event before any chunk reached the caller can be retried or fall back;
    after, the answer is half-delivered and the error says so, carrying the text and usage seen so far.
    """
    if acc.chunk_count and isinstance(mapped, (NetworkError, ResponseParsingError)):
        return StreamInterruptedError(mapped.message, provider=provider, model=model, partial_content=acc.content,
                                      partial_usage=acc.usage)
    return mapped


def httpx_timeout(config: ProviderConfig) -> httpx2.Timeout:
    """The SDK clients' timeout: ``timeout`` for every phase, ``connect_timeout`` for connecting."""
    import httpx2

    return httpx2.Timeout(config.timeout, connect=config.connect_timeout or config.timeout)


def httpx_limits(config: ProviderConfig) -> httpx2.Limits:
    """The SDK clients' pool limits."""
    import httpx2

    return httpx2.Limits(
        max_connections=config.max_connections,
        max_keepalive_connections=config.max_keepalive_connections if config.keep_alive else 0,
        keepalive_expiry=config.keepalive_expiry,
    )


def warm_lazy_imports() -> None:
    """Import what httpx2/anyio otherwise import on the first request, inside the event loop (~30 ms)."""
    try:
        importlib.import_module("anyio._backends._asyncio")
    except ImportError:  # another anyio layout: the first request pays for it instead
        pass


class DualTransportProvider(BaseProvider):
    """Base of the providers that run on their vendor SDK or on the native transport, chosen per deployment.

    Subclasses implement :meth:`_native_headers` (what every native request carries), :meth:`_build_sdk`
    (build the SDK client; runs in a worker thread), :meth:`_close_sdk` and :meth:`_configure` (per-deployment
    request defaults and the vendor transport over the opened client, run after either is ready). Anthropic,
    Gemini, the Responses API and :class:`~spoon_llm.providers.openai.OpenAICompatibleProvider` all use it.
    """

    #: The transports this provider offers (``transport`` names outside it mean ``sdk``).
    transports: ClassVar[tuple[str, ...]] = ("native", "sdk")

    def __init__(self, client: Any = None, http_client: httpx2.AsyncClient | None = None) -> None:
        """Create the provider; ``initialize`` builds the client.

        ``client`` is a ready-made SDK client to use instead (custom auth, tests); ``http_client`` an
        ``httpx2.AsyncClient`` for the SDK client we build (tests inject an ``httpx2.MockTransport`` this way).
        Either means the SDK transport. The caller keeps ownership of both and closes them.
        """
        super().__init__()
        self._injected = client
        self._injected_http = http_client
        self._client: Any = None
        self._native: NativeClient | None = None
        self._sdk_owned = False
        #: Which transport this deployment uses (``native`` or ``sdk``); set by ``initialize``.
        self.transport_name = ""

    def _sdk_injected(self) -> bool:
        """Whether the caller handed in an SDK client or HTTP client (that means the SDK transport)."""
        return self._injected is not None or self._injected_http is not None

    def _client_label(self) -> str:
        """The provider name the native client puts on its errors."""
        return self.provider_name

    async def _setup(self) -> None:
        register_secret(self.api_key)
        self.transport_name = resolve_transport(self.config, sdk_injected=self._sdk_injected(),
                                                supported=self.transports)
        if self.transport_name == "native":
            # Importing aiohttp (~150 ms) must not stall the event loop.
            module = await asyncio.to_thread(load_native)
            native: NativeClient = module.NativeClient(NativeSettings.from_config(self.config),
                                                       self._native_headers(), provider=self._client_label(),
                                                       base_url=self.base_url)
            native.open()
            self._native = native
        else:
            # Importing the SDK (0.3-0.8 s) and building its TLS context read files: keep both off the loop.
            try:
                await asyncio.to_thread(self._load_sdk)
            except BaseException:
                await self._close()
                raise
        try:
            self._configure()
        except BaseException:
            await self._close()  # a half-built deployment must not leave a pool open
            raise

    def _load_sdk(self) -> None:
        self._client = self._build_sdk()
        self._sdk_owned = self._client is not self._injected

    async def sdk_client(self) -> Any:
        """The vendor SDK client of this deployment, for the endpoints we do not wrap (built on first use)."""
        self._ensure_ready()
        if self._client is None:
            await asyncio.to_thread(self._load_sdk)
        return self._client

    async def _close(self) -> None:
        native, self._native = self._native, None
        if native is not None:
            await native.close()
        client, self._client = self._client, None
        if client is not None and self._sdk_owned:
            await self._close_sdk(client)

    @abstractmethod
    def _native_headers(self) -> dict[str, str]:
        """Headers every native request of this deployment carries (auth, versions, user agent...)."""

    @abstractmethod
    def _build_sdk(self) -> Any:
        """Build the SDK client (or return the injected one); runs in a worker thread."""

    @abstractmethod
    async def _close_sdk(self, client: Any) -> None:
        """Close an SDK client this provider built."""

    @abstractmethod
    def _configure(self) -> None:
        """Per-deployment request defaults; runs once either transport is ready."""

    def _translate_sdk(self, exc: BaseException, model: str | None) -> LLMError | None:
        """Our error for an SDK exception: the SDK transport's one mapping (subclasses with one override this)."""
        return None

    def _sdk_errors(self, model: str | None) -> ErrorScope:
        """The scope every SDK call runs in: what escapes it is mapped by :meth:`_translate_sdk`."""
        return ErrorScope(self._translate_sdk, model)

    def _stream_failure(self, exc: BaseException, acc: StreamAccumulator, model: str) -> LLMError:
        """Our error for what reading a stream raised (see :func:`stream_failure` for the rule)."""
        mapped = exc if isinstance(exc, LLMError) else self._translate_sdk(exc, model)
        if mapped is None and isinstance(exc, ValueError):  # a chunk that is not JSON: the stream was cut mid-event
            mapped = NetworkError(f"undecodable stream chunk: {exc}", provider=self.provider_name, model=model)
        if not isinstance(mapped, ProviderError):
            return ProviderError(f"stream failed: {exc!r}", provider=self.provider_name, model=model)
        return stream_failure(mapped, acc, self.provider_name, model)
