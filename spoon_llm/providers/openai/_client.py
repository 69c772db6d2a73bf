"""The OpenAI-compatible family's deployment: configuration, the two transports, how one request travels.

:class:`OpenAIClient` is the :class:`~spoon_llm.providers._common.DualTransportProvider` part of
:class:`~spoon_llm.providers.openai.OpenAICompatibleProvider`: on ``initialize`` it settles the label, base URL,
wire dialect, defaults and headers, and the shared skeleton picks the transport (``native``, ``sdk``, or
``aiohttp``: the SDK on its aiohttp client), builds the SDK client in a worker thread, hands out ``sdk_client()``
and closes what was opened. Its request plumbing (:meth:`~OpenAIClient._post_json`,
:meth:`~OpenAIClient._stream_sse`) is what every operation of the provider goes through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from functools import partial
from typing import Any, ClassVar

import httpx2

from ..._headers import pacing_headers
from ...call_settings import settings_for
from ...config.models import ProviderConfig
from ...errors import (
    ConfigurationError,
    NetworkError,
    ProviderError,
    ResponseParsingError,
    StreamInterruptedError,
    register_secret,
    safe_cause,
)
from ...transport import SSEParser, loads
from ...types import LLMResponseChunk
from .._builtin import builtin_capabilities
from .._common import DualTransportProvider, httpx_limits, httpx_timeout
from .._sse_stream import body_reader, raise_read_failure
from ..base import require_sdk
from ._dialect import WireDialect
from ._errors import error_from_body
from ._stream import ChatStreamDecoder
from ._transport import NativeTransport, OpenAITransport, SdkTransport, native_headers

__all__ = ["OpenAIClient", "StreamCall"]

#: What a streamed call is built into: the model, the JSON body, extra headers and the timeout.
StreamCall = tuple[str, Mapping[str, Any], Any, Any]

_CONFIG_FIELDS = frozenset(ProviderConfig.model_fields)
_log = logging.getLogger(__name__)


def _fold_unknown_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keys our schema does not know go to ``options``: the older API passed free-form dicts to providers.

    The older spellings of known settings (``retry_attempts``, ``connection_pool_size``, ...) are read as such.
    """
    from ...config._older import older_provider_layout

    config = older_provider_layout(config)
    known = {k: v for k, v in config.items() if k in _CONFIG_FIELDS}
    unknown = {k: v for k, v in config.items() if k not in _CONFIG_FIELDS}
    if unknown:
        _log.debug("provider config keys kept in options (not in the schema): %s", sorted(unknown))
        known["options"] = {**unknown, **dict(known.get("options") or {})}
    return known


class OpenAIClient(DualTransportProvider):
    """Set-up and request plumbing of an OpenAI-compatible deployment (see the module docstring)."""

    provider_name = "openai_compatible"
    capabilities = builtin_capabilities("openai_compatible")
    default_base_url: ClassVar[str | None] = None
    default_model: ClassVar[str | None] = None
    requires_api_key: ClassVar[bool] = False
    #: Models listed in metadata when the configuration names none.
    known_models: ClassVar[tuple[str, ...]] = ()
    #: Embedding model used when neither the call nor ``options.embedding_model`` names one.
    default_embedding_model: ClassVar[str | None] = None
    #: Inputs per embeddings request (OpenAI accepts up to 2048).
    embedding_batch_size: ClassVar[int] = 2048
    supports_embeddings: ClassVar[bool] = True
    #: Assistant field that carries reasoning back to the vendor (see :class:`WireDialect`).
    reasoning_field: ClassVar[str | None] = None
    completion_tokens_for_reasoning: ClassVar[bool] = True
    stream_usage: ClassVar[bool] = True
    embedding_encoding: ClassVar[str | None] = None
    #: Whether the API takes ``response_format: {"type": "json_schema"}``; without it a typed ``response_format``
    #: is asked for as ``json_object`` plus the schema in a system instruction, and validated on arrival.
    supports_json_schema: ClassVar[bool] = True
    #: Let the SDK fill organization/project from ``OPENAI_*`` variables (only right for OpenAI itself).
    sdk_env_defaults: ClassVar[bool] = False
    #: Path (relative to the base URL) probed by :meth:`health_check`.
    health_path: ClassVar[str] = "models"

    transports: ClassVar[tuple[str, ...]] = ("native", "sdk", "aiohttp")

    def __init__(self, *, client: Any = None, http_transport: httpx2.AsyncBaseTransport | None = None) -> None:
        super().__init__(client)
        self._http_transport = http_transport
        self._transport: OpenAITransport | None = None
        self._http: httpx2.AsyncClient | None = None
        self._sdk_auth: dict[str, Any] = {}
        self._sdk_headers: dict[str, Any] = {}
        self._label = self.provider_name
        self._dialect = WireDialect(provider=self.provider_name)
        self._model_name: str | None = None
        self._defaults: dict[str, Any] | None = None
        self._config_extra: dict[str, Any] = {}
        #: The error of the last failed :meth:`health_check`, for diagnosis.
        self.last_health_error: Exception | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def initialize(self, config: ProviderConfig | Mapping[str, Any]) -> None:
        """Validate ``config`` and build the client (a plain dict's unknown keys are kept in ``options``)."""
        if not isinstance(config, ProviderConfig) and isinstance(config, Mapping):
            config = _fold_unknown_keys(config)
        await super().initialize(config)

    def get_additional_headers(self, config: Mapping[str, Any]) -> dict[str, str]:
        """Headers sent with every request of this deployment; override to add vendor headers.

        ``config`` is the configuration as a dict (``options`` merged in at the top level, keys left out).
        """
        return {}

    def _header_view(self) -> dict[str, Any]:
        view = self.config.model_dump(exclude={"api_key", "api_keys", "options"})
        view.update(self.config.options)
        return view

    def _resolve_base_url(self) -> str | None:
        return self.config.base_url or self.default_base_url

    @property
    def base_url(self) -> str | None:
        """The endpoint this deployment talks to."""
        return self._resolve_base_url()

    def _make_dialect(self) -> WireDialect:
        return WireDialect(
            provider=self._label,
            reasoning_field=self.reasoning_field,
            completion_tokens_for_reasoning=self.completion_tokens_for_reasoning,
            stream_usage=self.stream_usage,
            embedding_encoding=self.embedding_encoding,
            json_schema=self.supports_json_schema,
        )

    async def _setup(self) -> None:
        cfg = self.config
        if type(self).provider_name == "openai_compatible" and self.provider_name == "openai_compatible":
            self._label = cfg.name or self.provider_name  # a configured endpoint is known by its section name
        else:
            self._label = self.provider_name
        base_url = self._resolve_base_url()
        if not base_url:
            raise ConfigurationError(
                f"no base_url for provider {self._label!r}: add base_url to [providers.{cfg.name or self._label}]",
                provider=self._label, key=f"providers.{cfg.name or self._label}.base_url",
            )
        self._dialect = self._make_dialect()
        self._model_name = cfg.model or self.default_model
        defaults = {"max_tokens": cfg.max_tokens, "temperature": cfg.temperature, "top_p": cfg.top_p}
        self._defaults = {k: v for k, v in defaults.items() if v is not None} or None
        self._config_extra = dict(cfg.extra_body)
        if self._config_extra:
            self._defaults = {**(self._defaults or {}), "extra_body": self._config_extra}
        api_key = self.api_key
        register_secret(api_key)
        # Configured headers win over the provider's own (e.g. an explicit X-Title for OpenRouter); the older
        # API's free-form ``custom_headers`` key (now in options) still works.
        legacy = cfg.options.get("custom_headers")
        headers = {**self.get_additional_headers(self._header_view()),
                   **(legacy if isinstance(legacy, Mapping) else {}), **cfg.extra_headers}
        self._sdk_headers = headers
        await super()._setup()

    def _sdk_injected(self) -> bool:
        return self._injected is not None or self._http_transport is not None

    def _client_label(self) -> str:
        return self._label

    def _native_headers(self) -> dict[str, str]:
        return self._openai_headers(self.api_key, self._sdk_headers)

    def _openai_headers(self, api_key: str | None, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers every native request carries; a vendor with its own auth header overrides this."""
        return native_headers(self.config, api_key, headers, env_defaults=self.sdk_env_defaults)

    def _configure(self) -> None:
        if self._native is not None:
            transport: OpenAITransport = NativeTransport(self._native, self._resolve_base_url() or "", self._label,
                                                         keyless=self._keyless(self.api_key))
        else:
            transport = SdkTransport(self._client, self._http, self._label, self._sdk_auth)
        self._transport = self._wrap_transport(transport)

    def _build_sdk(self) -> Any:
        if self._injected is not None:
            return self._injected
        # On the native transport the SDK client is only for sdk_client(): the plain httpx2 one.
        kind = "sdk" if self.transport_name == "native" else self.transport_name
        client, http, auth = self._build_sdk_client(kind, self._http_transport)
        if self.transport_name != "native":
            self._http, self._sdk_auth = http, auth
        return client

    async def _close_sdk(self, client: Any) -> None:
        await client.close()

    async def _close(self) -> None:
        self._transport = None
        try:
            await super()._close()
        finally:
            self._http = None

    def _keyless(self, api_key: str | None) -> bool:
        """True when no request of this deployment may carry ``Authorization`` (no key, no token)."""
        return not api_key

    def _wrap_transport(self, transport: OpenAITransport) -> OpenAITransport:
        """Hook around either transport (a vendor that routes paths per model or adds per-request auth)."""
        return transport

    def _build_sdk_client(self, transport: str, http_transport: httpx2.AsyncBaseTransport | None
                          ) -> tuple[Any, httpx2.AsyncClient, dict[str, Any]]:
        """An ``AsyncOpenAI`` for this deployment (``max_retries=0``), its HTTP client, the per-request auth."""
        # Unless the SDK transport was asked for, it is used only because aiohttp is missing: name [native].
        openai = require_sdk("openai", "openai", native_instead=self.config.transport != "sdk")
        cfg = self.config
        api_key = self.api_key
        headers = dict(self._sdk_headers)
        auth: dict[str, Any] = {}
        if not api_key:
            # No key: send no Authorization header at all (the SDK needs the omission said per request too).
            auth = {"Authorization": openai.Omit()}
            headers = {**headers, **auth}
        http = self._build_http_client(openai, transport, http_transport)
        client = openai.AsyncOpenAI(
            api_key=api_key or "unused",
            base_url=self._resolve_base_url(),
            organization=cfg.organization,
            project=cfg.project,
            max_retries=0,
            timeout=self._timeout(),
            http_client=http,
            default_headers=headers,
        )
        if not self.sdk_env_defaults:
            # Never forward OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment to another vendor.
            client.organization = cfg.organization
            client.project = cfg.project
        return client, http, auth

    def _timeout(self) -> httpx2.Timeout:
        return httpx_timeout(self.config)

    def _build_http_client(self, openai: Any, transport: str,
                           http_transport: httpx2.AsyncBaseTransport | None) -> httpx2.AsyncClient:
        cfg = self.config
        limits = httpx_limits(cfg)
        if transport == "aiohttp" and http_transport is None:
            try:
                import aiohttp  # noqa: F401
            except ImportError as exc:
                raise ConfigurationError(
                    f'transport = "aiohttp" needs the aiohttp package: pip install "spoon-llm[aiohttp]" ({exc})',
                    provider=self._label, key=f"providers.{cfg.name or self._label}.transport",
                ) from exc
            client: httpx2.AsyncClient = openai.DefaultAioHttpClient(
                timeout=self._timeout(), limits=limits, follow_redirects=True
            )
            return client
        return httpx2.AsyncClient(timeout=self._timeout(), limits=limits, follow_redirects=True,
                                  transport=http_transport)

    # -- request plumbing -----------------------------------------------------------------------------------

    def _settle(self, kwargs: dict[str, Any]) -> None:
        """Reads the call's options as the OpenAI family does, in place (see :mod:`spoon_llm.call_settings`)."""
        settled = settings_for(kwargs, "openai", provider=self._label)
        if settled is not kwargs:
            kwargs.clear()
            kwargs.update(settled)

    async def _model_for(self, kwargs: dict[str, Any]) -> str:
        return self._known_model(kwargs) or await self._discovered_model()

    def _known_model(self, kwargs: dict[str, Any]) -> str | None:
        """The call's model (``kwargs`` settled, ``model`` taken out), else the configured one; ``None``: neither."""
        self._settle(kwargs)
        model: str | None = kwargs.pop("model", None) or self._model_name
        return model or None

    async def _discovered_model(self) -> str:
        model = self._model_name = await self._discover_model()
        return model

    async def _discover_model(self) -> str:
        """The model to use when none is configured; the default raises the "no model" error."""
        return self.model

    def _merge_extra_body(self, kwargs: dict[str, Any]) -> None:
        if self._config_extra and kwargs.get("extra_body"):
            kwargs["extra_body"] = {**self._config_extra, **kwargs["extra_body"]}

    def _decode(self, content: bytes, model: str) -> Any:
        try:
            return loads(content)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            raise ResponseParsingError(f"the answer is not valid JSON: {exc}", provider=self._label,
                                       model=model) from exc

    async def _post_json(
        self, path: str, body: Mapping[str, Any], model: str, headers: Any, timeout: Any
    ) -> tuple[dict[str, Any], str | None, float, dict[str, str] | None]:
        transport = self._transport
        assert transport is not None
        start = time.perf_counter()
        content, response_headers = await transport.post(path, body, model, headers, timeout)
        return self._answer(content, response_headers, model, start)

    def _answer(self, content: bytes, response_headers: Mapping[str, str], model: str, start: float
                ) -> tuple[dict[str, Any], str | None, float, dict[str, str] | None]:
        """What :meth:`_post_json` returns, from the answer's bytes and headers (``start``: when it was sent)."""
        data = self._decode(content, model)
        duration = time.perf_counter() - start
        request_id = response_headers.get("x-request-id")
        if not isinstance(data, dict):
            raise ResponseParsingError(f"expected a JSON object, got {type(data).__name__}", provider=self._label,
                                       model=model, request_id=request_id)
        if "error" in data and not data.get("choices") and not data.get("data"):
            # Some compatible servers answer 200 with an error object.
            code = data["error"].get("code") if isinstance(data["error"], dict) else None
            raise error_from_body(code if isinstance(code, int) else None, data, provider=self._label, model=model,
                                  headers=response_headers, request_id=request_id)
        return data, request_id, duration, pacing_headers(response_headers)

    def _read_failure(self, exc: Exception, decoder: ChatStreamDecoder, model: str) -> BaseException:
        """Our error for what reading a stream raised (the transport's seam); after content, an interruption."""
        transport = self._transport
        mapped = exc if isinstance(exc, ProviderError) else (
            transport.translate(exc, model) if transport is not None else None)
        if mapped is None:
            return exc
        if isinstance(mapped, (NetworkError, ResponseParsingError)) and decoder.content_sent:
            return StreamInterruptedError(
                f"the stream broke after content reached the caller: {mapped.message}",
                partial_content=decoder.acc.content, partial_usage=decoder.acc.usage,
                provider=self._label, model=model, request_id=decoder.acc.request_id,
            )
        return mapped

    async def _stream_sse(self, path: str, request: Callable[[], Awaitable[StreamCall]],
                          decoder_type: type[ChatStreamDecoder]) -> AsyncGenerator[LLMResponseChunk, None]:
        """POST a streamed request and decode the answer, whichever transport read it.

        ``request()`` builds the call (model, body, headers, timeout) once the caller iterates. This one generator
        runs from the request to the decoded chunks: the shared loop of
        :func:`~spoon_llm.providers._sse_stream.sse_stream` is spelled out here rather than relayed, as every
        generator between the wire and the caller costs each chunk a resumption (the gateway's hot path).
        """
        model, body, headers, timeout = await request()
        decoder = decoder_type(self._label, model)
        transport = self._transport
        assert transport is not None
        response = await transport.open_stream(path, body, model, headers, timeout)
        try:
            if decoder.acc.request_id is None:
                decoder.acc.request_id = response.headers.get("x-request-id")
            pacing = pacing_headers(response.headers)
            if pacing:
                decoder.acc.metadata["rate_limit_headers"] = pacing
            if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
                # A server that ignored ``stream``: one whole answer (or an error object) as JSON.
                try:
                    content = await response.aread()
                except Exception as exc:
                    raise self._read_failure(exc, decoder, model) from safe_cause(exc)
                data = self._decode(content, model)
                if isinstance(data, dict) and "error" in data and not data.get("choices"):
                    raise error_from_body(None, data, provider=self._label, model=model, headers=response.headers)
                for chunk in decoder.whole(data):
                    yield chunk
                return
            parser = SSEParser(max_event_bytes=self.config.max_event_bytes,
                               max_stream_bytes=self.config.max_stream_bytes, provider=self._label, model=model)
            read, read_error = body_reader(response)
            event = decoder.event
            while True:
                try:
                    raw = await read()
                except Exception as exc:
                    raise_read_failure(exc, read_error, partial(self._read_failure, decoder=decoder, model=model))
                if not raw:
                    break
                for name, data in parser.feed(raw):
                    for chunk in event(name, data, False):
                        yield chunk
            for name, data in parser.close():
                for chunk in event(name, data, True):
                    yield chunk
            for chunk in decoder.end():
                yield chunk
        finally:
            await response.aclose()
