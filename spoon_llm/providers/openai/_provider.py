"""``OpenAICompatibleProvider``: any OpenAI-compatible chat API through the official ``openai`` SDK.

The shared base of the ``openai``, ``openrouter``, ``deepseek``, ``vllm`` and ``ollama`` providers, and usable on
its own for a purely configured endpoint::

    [providers.my-server]
    type = "openai_compatible"
    base_url = "http://10.0.0.5:8000/v1"
    model = "qwen2.5-7b-instruct"
    api_key = "${MY_SERVER_KEY}"          # optional

Two transports share one wire mapping (:mod:`._convert`, :mod:`._decode`, :mod:`._stream`, :mod:`._errors`):

* ``transport = "native"`` (the default when aiohttp is installed): our own client, one aiohttp session and
  connector per deployment (:mod:`spoon_llm.transport`), the body encoded with orjson, the answer's JSON or SSE
  bytes decoded once by our mapping;
* ``transport = "sdk"``: one ``AsyncOpenAI`` client per deployment on an ``httpx2.AsyncClient`` (or, with
  ``transport = "aiohttp"``, the SDK's aiohttp client); requests go through the SDK's low-level ``post`` with a
  body built by our mapping and come back as raw bytes, so no SDK model objects are built on the hot path.

Either way the pool limits and timeouts come from the configuration, no client retries (the manager owns
retries), ``cleanup()`` closes the pool, and both report identical results (the conformance corpus runs over
both). ``await provider.sdk_client()`` hands out an ``AsyncOpenAI`` for the vendor's other endpoints (files,
images...) on either transport.

Per-call keywords: ``model``, ``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``tools``, ``tool_choice``
(``"auto"``/``"none"``/``"required"``, a function name, or OpenAI's dict), ``parallel_tool_calls``,
``response_format`` (or ``json=True`` / ``json_schema=``), ``seed``, ``user``, ``reasoning_effort``,
``include_usage`` (streams), ``extra_headers``, ``extra_body`` and ``timeout``. Any other keyword is sent in the
request body as it is (``n``, ``logprobs``, vLLM's ``top_k``, OpenRouter's ``provider``...): the vendor, not us,
decides what it accepts. ``None`` means "do not send", also for a configured default.

Subclassing (the older README's pattern keeps working)::

    @register_provider("custom_openai", [ProviderCapability.CHAT, ProviderCapability.COMPLETION])
    class CustomOpenAIProvider(OpenAICompatibleProvider):
        def __init__(self):
            super().__init__()
            self.provider_name = "custom_openai"
            self.default_base_url = "https://api.custom-provider.com/v1"
            self.default_model = "custom-model"

        def get_additional_headers(self, config):
            return {"Custom-Header": config.get("custom_value", "default")}
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, ClassVar

import httpx2

from ..._headers import pacing_headers
from ...call_settings import settings_for
from ...config.models import ProviderConfig
from ...errors import (
    DECODE_FAULTS,
    ConfigurationError,
    NetworkError,
    ProviderError,
    ResponseParsingError,
    StreamInterruptedError,
    ValidationError,
    excerpt,
    malformed,
    register_secret,
    safe_cause,
)
from ...interface import ProviderMetadata, StreamCallback
from ...streaming import collect_stream
from ...transport import NativeSettings, SSEParser, dumps, load_native, loads, resolve_transport
from ...types import EmbeddingResponse, LLMResponse, LLMResponseChunk, TokenUsage
from .._builtin import builtin_capabilities
from ..base import BaseProvider, require_sdk
from ._convert import build_chat_body, build_completion_body, build_embedding_body, messages_to_wire
from ._decode import parse_chat_completion, parse_embeddings, parse_text_completion
from ._dialect import WireDialect, model_rules, supports_legacy_completions
from ._errors import error_from_body
from ._stream import ChatStreamDecoder, CompletionStreamDecoder
from ._transport import NativeTransport, OpenAITransport, ResponseStream, SdkTransport, native_headers

__all__ = ["OpenAICompatibleProvider", "builtin_capabilities"]

_CONFIG_FIELDS = frozenset(ProviderConfig.model_fields)
_log = logging.getLogger(__name__)


def _encode(body: Mapping[str, Any], provider: str) -> bytes:
    try:
        return dumps(body)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"the request cannot be sent as JSON: {exc}", provider=provider) from exc


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


#: The data payload that ends an OpenAI stream (raw bytes, compared before any decoding).
_DONE = b"[DONE]"


def _completion_as_chunk(data: Mapping[str, Any]) -> dict[str, Any]:
    """A whole ``chat.completion`` (a server that ignored ``stream``) as one stream chunk."""
    choices = [{**c, "delta": c.get("message") or {}} for c in data.get("choices") or ()]
    return {**data, "choices": choices}


class OpenAICompatibleProvider(BaseProvider):
    """Provider for any OpenAI-compatible API (chat, streaming, tools, legacy completions, embeddings).

    Subclasses set ``provider_name``, ``default_base_url``, ``default_model`` (class attributes, or instance
    attributes in ``__init__`` as the older API did), may override :meth:`get_additional_headers` and
    :meth:`get_metadata`, and tune the wire dialect with the class attributes below.

    ``client`` (an object with the SDK's ``post``/``get``/``close``) and ``http_transport`` (an
    ``httpx2.AsyncBaseTransport``, e.g. ``httpx2.MockTransport``) are for tests; either means the SDK transport.
    """

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

    def __init__(self, *, client: Any = None, http_transport: httpx2.AsyncBaseTransport | None = None) -> None:
        super().__init__()
        self._injected_client = client
        self._http_transport = http_transport
        self._transport: OpenAITransport | None = None
        #: Which transport this deployment uses (``native``, ``sdk`` or ``aiohttp``); set by ``initialize``.
        self.transport_name = ""
        self._client: Any = None
        self._http: httpx2.AsyncClient | None = None
        self._sdk: Any = None
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
        injected = self._injected_client is not None or self._http_transport is not None
        self.transport_name = resolve_transport(cfg, sdk_injected=injected, supported=("native", "sdk", "aiohttp"))
        if self.transport_name == "native":
            # Importing aiohttp (~150 ms) must not stall the event loop.
            native = await asyncio.to_thread(load_native)
            client = native.NativeClient(
                NativeSettings.from_config(cfg),
                self._native_headers(api_key, headers),
                provider=self._label, base_url=base_url,
            )
            client.open()
            self._transport = NativeTransport(client, base_url, self._label, keyless=self._keyless(api_key))
        elif self._injected_client is not None:
            self._client = self._injected_client
            self._transport = SdkTransport(self._client, None, self._label, {}, owns_client=False)
        else:
            # Importing the SDK (~0.3 s) and building its TLS context read files: keep both off the event loop.
            self._client, self._http, auth = await asyncio.to_thread(self._build_sdk_client, self.transport_name,
                                                                     self._http_transport)
            self._transport = SdkTransport(self._client, self._http, self._label, auth, owns_client=True)
        self._transport = self._wrap_transport(self._transport)

    def _native_headers(self, api_key: str | None, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers every native request carries; a vendor with its own auth header overrides this."""
        return native_headers(self.config, api_key, headers, env_defaults=self.sdk_env_defaults)

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
        cfg = self.config
        return httpx2.Timeout(cfg.timeout, connect=cfg.connect_timeout or cfg.timeout)

    def _build_http_client(self, openai: Any, transport: str,
                           http_transport: httpx2.AsyncBaseTransport | None) -> httpx2.AsyncClient:
        cfg = self.config
        limits = httpx2.Limits(
            max_connections=cfg.max_connections,
            max_keepalive_connections=cfg.max_keepalive_connections if cfg.keep_alive else 0,
            keepalive_expiry=cfg.keepalive_expiry,
        )
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

    async def sdk_client(self) -> Any:
        """An ``AsyncOpenAI`` client for this deployment, for the vendor's endpoints we do not wrap.

        On the SDK transport it is the client requests already go through; on the native one it is built on
        first use (same base URL, key and headers, ``max_retries=0``) and closed by :meth:`cleanup`.
        """
        self._ensure_ready()
        if self._client is not None:
            return self._client
        if self._sdk is None:
            # Importing the SDK (~0.3 s) must not stall the event loop.
            self._sdk, _, _ = await asyncio.to_thread(self._build_sdk_client, "sdk", None)
        return self._sdk

    async def _close(self) -> None:
        transport, self._transport = self._transport, None
        self._client = None
        if transport is not None:
            await transport.close()
        sdk, self._sdk = self._sdk, None
        if sdk is not None:
            await sdk.close()
        self._http = None

    # -- request plumbing -----------------------------------------------------------------------------------

    def _settle(self, kwargs: dict[str, Any]) -> None:
        """Reads the call's options as the OpenAI family does, in place (see :mod:`spoon_llm.call_settings`)."""
        settled = settings_for(kwargs, "openai", provider=self._label)
        if settled is not kwargs:
            kwargs.clear()
            kwargs.update(settled)

    async def _model_for(self, kwargs: dict[str, Any]) -> str:
        self._settle(kwargs)
        model = kwargs.pop("model", None) or self._model_name
        if not model:
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
        payload = _encode(body, self._label)
        transport = self._transport
        assert transport is not None
        start = time.perf_counter()
        content, response_headers = await transport.post(path, payload, model, headers, timeout)
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

    def _stream_failure(self, exc: Exception, decoder: ChatStreamDecoder, model: str) -> Exception:
        """Our error for what reading a stream raised; after content reached the caller, an interruption."""
        transport = self._transport
        mapped = exc if isinstance(exc, ProviderError) else (
            transport.translate(exc, model) if transport is not None else None)
        if mapped is None:
            return exc
        if isinstance(mapped, NetworkError) and decoder.content_sent:
            return StreamInterruptedError(
                f"the stream broke after content reached the caller: {mapped.message}",
                partial_content=decoder.acc.content, partial_usage=decoder.acc.usage,
                provider=self._label, model=model, request_id=decoder.acc.request_id,
            )
        return mapped

    async def _stream_sse(
        self,
        path: str,
        body: Mapping[str, Any],
        model: str,
        headers: Any,
        timeout: Any,
        decoder: ChatStreamDecoder,
    ) -> AsyncGenerator[LLMResponseChunk, None]:
        payload = _encode(body, self._label)
        transport = self._transport
        assert transport is not None
        response = await transport.open_stream(path, payload, model, headers, timeout)
        try:
            async for chunk in self._read_stream(response, decoder, model):
                yield chunk
        finally:
            await response.aclose()

    async def _read_stream(self, response: ResponseStream, decoder: ChatStreamDecoder, model: str
                           ) -> AsyncGenerator[LLMResponseChunk, None]:
        """Decode one streamed answer, whichever transport read it: SSE framing, one JSON decode per event."""
        if decoder.acc.request_id is None:
            decoder.acc.request_id = response.headers.get("x-request-id")
        pacing = pacing_headers(response.headers)
        if pacing:
            decoder.acc.metadata["rate_limit_headers"] = pacing
        if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
            try:
                content = await response.aread()
            except Exception as exc:
                raise self._stream_failure(exc, decoder, model) from safe_cause(exc)
            data = self._decode(content, model)
            if isinstance(data, dict) and "error" in data and not data.get("choices"):
                raise error_from_body(None, data, provider=self._label, model=model, headers=response.headers)
            for chunk in self._feed(decoder, data, model, _completion_as_chunk):
                yield chunk
            yield decoder.final_chunk()
            return
        parser = SSEParser(max_event_bytes=self.config.max_event_bytes,
                           max_stream_bytes=self.config.max_stream_bytes, provider=self._label, model=model)
        done = False
        chunks = response.aiter_bytes()
        while True:
            try:
                raw = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except Exception as exc:
                raise self._stream_failure(exc, decoder, model) from safe_cause(exc)
            for _event, data in parser.feed(raw):
                if done:
                    continue  # drain to the end so the connection can be reused
                if data == _DONE:
                    done = True
                    continue
                parsed = self._decode(data, model)
                try:
                    chunks_out = decoder.feed(parsed)
                except DECODE_FAULTS as exc:
                    raise malformed("a stream event", parsed, exc, provider=self._label, model=model) from exc
                for chunk in chunks_out:
                    yield chunk
                if decoder.error is not None:
                    raise decoder.error
        for _event, data in parser.close():
            if done or data == _DONE:
                done = True
                continue
            try:
                parsed = loads(data)
            except ValueError:
                break  # half an event: the body was cut, reported just below
            for chunk in self._feed(decoder, parsed, model):
                yield chunk
            if decoder.error is not None:
                raise decoder.error
        if not done and decoder.acc.finish_reason is None:
            # Neither [DONE] nor a finish reason: the body ended early, the answer may be incomplete.
            message = "the stream ended before the answer was complete"
            if decoder.content_sent:
                raise StreamInterruptedError(message, partial_content=decoder.acc.content,
                                             partial_usage=decoder.acc.usage, provider=self._label, model=model,
                                             request_id=decoder.acc.request_id)
            raise ResponseParsingError(message, provider=self._label, model=model,
                                       request_id=decoder.acc.request_id)
        yield decoder.final_chunk()

    def _feed(self, decoder: ChatStreamDecoder, data: Any, model: str,
              shape: Callable[[Any], Any] | None = None) -> list[LLMResponseChunk]:
        """``decoder.feed`` for the rarer paths; a payload of the wrong shape is a typed error."""
        try:
            return decoder.feed(shape(data) if shape is not None else data)
        except DECODE_FAULTS as exc:
            raise malformed("a stream event", data, exc, provider=self._label, model=model) from exc

    def _finish(self, response: LLMResponse) -> LLMResponse:
        """Last touch on every complete answer (subclasses add cost, metadata...)."""
        return response

    async def _chat_request(self, messages: Any, kwargs: dict[str, Any], *, stream: bool
                            ) -> tuple[str, dict[str, Any], Any, Any]:
        """The model, JSON body, per-call headers and timeout of one chat call (``kwargs`` is consumed)."""
        if not self._initialized:
            self._ensure_ready()
        model = await self._model_for(kwargs)
        headers = kwargs.pop("extra_headers", None)
        timeout = kwargs.pop("timeout", None)
        if self._config_extra:
            self._merge_extra_body(kwargs)
        dialect = self._dialect
        rules = model_rules(model, dialect.completion_tokens_for_reasoning)
        body = build_chat_body(messages_to_wire(messages, dialect, rules), model, kwargs, dialect=dialect,
                               rules=rules, defaults=self._defaults, stream=stream)
        return model, body, headers, timeout

    # -- operations -----------------------------------------------------------------------------------------

    async def chat(self, messages: Any, **kwargs: Any) -> LLMResponse:
        """Send a conversation (``Message`` objects, dicts, or a string) and return the complete answer."""
        model, body, headers, timeout = await self._chat_request(messages, kwargs, stream=False)
        data, request_id, duration, pacing = await self._post_json("chat/completions", body, model, headers, timeout)
        try:
            response = parse_chat_completion(data, provider=self._label, model=model, request_id=request_id,
                                             duration=duration)
        except DECODE_FAULTS as exc:
            raise malformed("the answer", data, exc, provider=self._label, model=model) from exc
        if pacing:
            response.metadata["rate_limit_headers"] = pacing  # the rate limiter paces the key from these
        return self._finish(response)

    def chat_stream(
        self,
        messages: Any,
        callbacks: Sequence[StreamCallback] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[LLMResponseChunk]:
        """Stream the answer: text/reasoning/tool chunks as they arrive, then one ``final`` chunk.

        The final chunk carries the finish reason, usage (``include_usage`` is asked for by default) and the
        complete tool calls merged from their fragments. Each chunk is also passed to every callback, in order.
        """
        stream = self._stream(messages, **kwargs)  # errors (even "not initialised") surface on iteration
        if not callbacks:
            return stream
        return self._with_callbacks(stream, callbacks)

    async def _stream(self, messages: Any, **kwargs: Any) -> AsyncGenerator[LLMResponseChunk, None]:
        model, body, headers, timeout = await self._chat_request(messages, kwargs, stream=True)
        decoder = ChatStreamDecoder(self._label, model)
        async with aclosing(self._stream_sse("chat/completions", body, model, headers, timeout, decoder)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def collect(self, stream: AsyncIterator[LLMResponseChunk]) -> LLMResponse:
        """Consume a stream from :meth:`chat_stream` and return it as one :class:`LLMResponse`."""
        try:
            response = await collect_stream(stream)
        except ResponseParsingError as exc:
            raise ResponseParsingError(exc.message, provider=self._label) from None
        return self._finish(response)

    @staticmethod
    async def _with_callbacks(
        stream: AsyncGenerator[LLMResponseChunk, None], callbacks: Sequence[StreamCallback]
    ) -> AsyncGenerator[LLMResponseChunk, None]:
        async with aclosing(stream) as chunks:
            async for chunk in chunks:
                for callback in callbacks:
                    result = callback(chunk)
                    if inspect.isawaitable(result):
                        await result
                yield chunk

    def _legacy_completions(self, model: str) -> bool:
        configured = self.config.options.get("legacy_completions")
        if configured is not None:
            return bool(configured)
        return supports_legacy_completions(model)

    async def completion(self, prompt: str, **kwargs: Any) -> LLMResponse:
        """Complete a prompt: the legacy ``/completions`` endpoint where the model has it, else chat.

        Legacy models are OpenAI's ``gpt-3.5-turbo-instruct``, ``davinci-002`` and ``babbage-002``; set
        ``options.legacy_completions = true`` to use the endpoint for every model of a server (vLLM, Ollama).
        """
        if not self._initialized:
            self._ensure_ready()
        model = await self._model_for(kwargs)
        if not self._legacy_completions(model):
            return await self.chat([{"role": "user", "content": prompt}], model=model, **kwargs)
        headers = kwargs.pop("extra_headers", None)
        timeout = kwargs.pop("timeout", None)
        self._merge_extra_body(kwargs)
        body = build_completion_body(prompt, model, kwargs, defaults=self._defaults)
        data, request_id, duration, _ = await self._post_json("completions", body, model, headers, timeout)
        return self._finish(parse_text_completion(data, provider=self._label, model=model, request_id=request_id,
                                                  duration=duration))

    def completion_stream(self, prompt: str, **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        """Stream a completion of ``prompt`` (legacy endpoint where the model has it, else chat)."""
        return self._completion_stream(prompt, **kwargs)

    async def _completion_stream(self, prompt: str, **kwargs: Any) -> AsyncGenerator[LLMResponseChunk, None]:
        if not self._initialized:
            self._ensure_ready()
        model = await self._model_for(kwargs)
        if not self._legacy_completions(model):
            async with aclosing(self._stream([{"role": "user", "content": prompt}], model=model, **kwargs)) as chat:
                async for chunk in chat:
                    yield chunk
            return
        headers = kwargs.pop("extra_headers", None)
        timeout = kwargs.pop("timeout", None)
        self._merge_extra_body(kwargs)
        body = build_completion_body(prompt, model, kwargs, stream=True, stream_usage=self.stream_usage,
                                     defaults=self._defaults)
        decoder = CompletionStreamDecoder(self._label, model)
        async with aclosing(self._stream_sse("completions", body, model, headers, timeout, decoder)) as chunks:
            async for chunk in chunks:
                yield chunk

    def _embedding_model(self) -> str:
        model = self.config.options.get("embedding_model") or self.default_embedding_model or self._model_name
        if not model:
            raise ConfigurationError(
                f"no embedding model for provider {self._label!r}: pass model=... or set options.embedding_model",
                provider=self._label,
            )
        return str(model)

    async def embed(self, inputs: str | Sequence[str], **kwargs: Any) -> EmbeddingResponse:
        """Embed one text or many; batches of ``batch_size`` (default 2048) are sent concurrently, order kept.

        ``dimensions`` and ``encoding_format`` pass through; base64 answers are decoded to floats.
        """
        if not self.supports_embeddings:
            return await super().embed(inputs, **kwargs)
        if not self._initialized:
            self._ensure_ready()
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        self._settle(kwargs)
        model = kwargs.pop("model", None) or self._embedding_model()
        batch_size = int(kwargs.pop("batch_size", None) or self.embedding_batch_size)
        headers = kwargs.pop("extra_headers", None)
        timeout = kwargs.pop("timeout", None)
        if not texts:
            return EmbeddingResponse(embeddings=[], provider=self._label, model=model)
        start = time.perf_counter()
        batches = [texts[i:i + batch_size] for i in range(0, len(texts), batch_size)]
        if isinstance(inputs, str):  # sent as the API's single-string form
            results = [await self._embed_batch(inputs, model, kwargs, headers, timeout)]
        elif len(batches) == 1:
            results = [await self._embed_batch(batches[0], model, kwargs, headers, timeout)]
        else:
            tasks = [asyncio.ensure_future(self._embed_batch(b, model, kwargs, headers, timeout)) for b in batches]
            try:
                results = list(await asyncio.gather(*tasks))
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        first = results[0]
        if len(results) > 1:
            first.embeddings = [vector for result in results for vector in result.embeddings]
            first.usage = self._sum_usage([r.usage for r in results if r.usage is not None])
            first.metadata["batches"] = len(results)
        first.duration = time.perf_counter() - start
        return first

    async def _embed_batch(
        self, texts: str | list[str], model: str, params: Mapping[str, Any], headers: Any, timeout: Any
    ) -> EmbeddingResponse:
        body = build_embedding_body(texts, model, params, dialect=self._dialect)
        data, request_id, _, _ = await self._post_json("embeddings", body, model, headers, timeout)
        response = parse_embeddings(data, provider=self._label, model=model, request_id=request_id)
        count = 1 if isinstance(texts, str) else len(texts)
        if len(response.embeddings) != count:
            raise ResponseParsingError(
                f"asked for {count} embeddings, got {len(response.embeddings)}", provider=self._label,
                model=model, request_id=request_id,
            )
        return response

    async def list_models(self) -> list[str]:
        """Ids of the models the endpoint lists (``GET /models``; costs no tokens)."""
        self._ensure_ready()
        transport = self._transport
        assert transport is not None
        data = self._decode(await transport.get("models", min(self.config.timeout, 30.0), None), "")
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ResponseParsingError(f"expected a model list, got {excerpt(data)}", provider=self._label)
        return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]

    async def health_check(self) -> bool:
        """True when the endpoint answers its model list (free: no tokens are spent)."""
        transport = self._transport
        if not self._initialized or transport is None:
            return False
        try:
            await transport.get(self.health_path, min(self.config.timeout, 10.0), self._model_name)
        except Exception as exc:
            self.last_health_error = exc
            return False
        self.last_health_error = None
        return True

    def get_metadata(self) -> ProviderMetadata:
        """Name, capabilities, defaults and models of this provider."""
        meta = super().get_metadata()
        meta.name = self._label if self._initialized else self.provider_name
        if not meta.available_models and self.known_models:
            meta.available_models = list(self.known_models)
        if self.config.context_window:
            meta.max_tokens = self.config.context_window
        return meta

    @staticmethod
    def _sum_usage(usages: Sequence[TokenUsage]) -> TokenUsage | None:
        total: TokenUsage | None = None
        for usage in usages:
            total = usage if total is None else total + usage
        return total
