"""``GeminiProvider``: the Gemini API (generativelanguage) through ``google-genai``'s async client.

One ``genai.Client`` per deployment, built once in ``initialize`` with the configured base URL, API version,
timeout, headers, our own ``httpx2.AsyncClient`` (pool limits from the configuration) and SDK retries off
(``HttpRetryOptions(attempts=1)``: the manager owns retries). Only ``client.aio`` is used.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import (
    LLMError,
    NetworkError,
    ProviderError,
    ResponseParsingError,
    StreamInterruptedError,
    ValidationError,
    register_secret,
)
from ...interface import ProviderCapability
from ...types import EmbeddingResponse, LLMResponse, LLMResponseChunk, Message, MessageInput, to_messages
from .._stream import StreamAccumulator
from ..base import BaseProvider, require_sdk
from ._convert import CallOptions, RequestDefaults, build_embed_request, build_request, model_path
from ._decode import StreamDecoder, decode_embeddings, decode_response, usage_from
from ._errors import ErrorMapper
from ._transport import GeminiTransport, select_transport

if TYPE_CHECKING:
    import httpx2

__all__ = ["GeminiProvider"]

PROVIDER = "gemini"
DEFAULT_EMBEDDING_MODEL = "gemini-embedding-001"
#: The API version the SDK is pointed at unless configured: v1beta carries thinking, JSON schemas and more.
DEFAULT_API_VERSION = "v1beta"
#: batchEmbedContents accepts at most 100 requests per call.
EMBED_BATCH_SIZE = 100


class GeminiProvider(BaseProvider):
    """Gemini models through the Gemini API (``generativelanguage.googleapis.com``).

    Configuration: ``api_key``, ``model``, ``base_url``, ``api_version`` (default ``v1beta``), ``timeout``,
    pool limits (``max_connections``, ``max_keepalive_connections``, ``keepalive_expiry``), ``max_tokens``,
    ``temperature``, ``top_p``, ``extra_headers``, ``extra_body``; ``options.schema_mode`` (``openapi``: JSON
    schemas converted to Gemini's schema subset, the default; ``json_schema``: sent unchanged as
    ``parametersJsonSchema``/``responseJsonSchema``), ``options.embedding_model`` and
    ``options.gemini_sdk_api = "public"`` to use only the SDK's public typed methods.

    Per-call keyword arguments: ``model``, ``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``stop``,
    ``seed``, ``presence_penalty``, ``frequency_penalty``, ``candidate_count``, ``tools`` (our tool specs and
    Gemini-native tools such as ``{"googleSearch": {}}``), ``tool_choice``, ``response_format``/``json``/
    ``json_schema``, ``thinking`` (a token budget, ``True``/``False`` or a ``thinkingConfig`` dict),
    ``reasoning_effort`` (``thinkingLevel``), ``safety_settings``, ``cached_content``, ``schema_mode``,
    ``response_modalities``, ``extra_headers``, ``extra_body``, ``timeout``.

    Example::

        provider = GeminiProvider()
        await provider.initialize({"api_key": "...", "model": "gemini-2.5-flash"})
        response = await provider.chat([{"role": "user", "content": "Hello"}])
    """

    provider_name = PROVIDER
    capabilities = (
        ProviderCapability.CHAT, ProviderCapability.COMPLETION, ProviderCapability.TOOLS,
        ProviderCapability.STREAMING, ProviderCapability.VISION, ProviderCapability.EMBEDDINGS,
        ProviderCapability.JSON_MODE, ProviderCapability.STRUCTURED_OUTPUT, ProviderCapability.REASONING,
        ProviderCapability.TOKEN_COUNTING,
    )
    default_model: ClassVar[str | None] = "gemini-2.5-flash"
    default_base_url: ClassVar[str | None] = "https://generativelanguage.googleapis.com/"
    api_key_env: ClassVar[str | None] = "GEMINI_API_KEY"

    def __init__(self, client: Any = None, http_client: httpx2.AsyncClient | None = None) -> None:
        """Create the provider; ``initialize`` builds the client.

        ``client`` is a ready-made ``google.genai.Client`` to use instead (other credentials, tests);
        ``http_client`` an ``httpx2.AsyncClient`` for the client we build (tests inject an
        ``httpx2.MockTransport`` this way). The caller keeps ownership of either and closes it.
        """
        super().__init__()
        self._injected = client
        self._injected_http = http_client
        self._client: Any = None
        self._http: httpx2.AsyncClient | None = None
        self._transport: GeminiTransport | None = None
        self._errors: ErrorMapper | None = None
        self._defaults = RequestDefaults(model="")

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def _setup(self) -> None:
        register_secret(self.api_key)
        # Importing google-genai (~0.4 s) and building TLS contexts read files: keep both off the event loop.
        self._client, self._http, self._errors = await asyncio.to_thread(self._build_client)
        options = self.config.options
        self._transport = select_transport(self._client, options.get("gemini_sdk_api"))
        self._defaults = RequestDefaults(
            model=self.model,
            max_tokens=self.config.max_tokens,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            schema_mode=str(options.get("schema_mode", "openapi")),
            extra_body=dict(self.config.extra_body),
        )

    def _build_client(self) -> tuple[Any, httpx2.AsyncClient | None, ErrorMapper]:
        # httpx2 and the SDK are imported here, in a worker thread, never when this module is imported.
        import httpx2

        genai = require_sdk("google.genai", "gemini")
        _warm_lazy_imports()
        types = require_sdk("google.genai.types", "gemini")
        sdk_errors = require_sdk("google.genai.errors", "gemini")
        if self._injected is not None:
            return self._injected, None, ErrorMapper(sdk_errors)
        cfg = self.config
        http = self._injected_http or httpx2.AsyncClient(
            timeout=httpx2.Timeout(cfg.timeout, connect=cfg.connect_timeout or cfg.timeout),
            limits=httpx2.Limits(
                max_connections=cfg.max_connections,
                max_keepalive_connections=cfg.max_keepalive_connections,
                keepalive_expiry=cfg.keepalive_expiry,
            ),
        )
        http_options = types.HttpOptions(
            base_url=self.base_url,
            api_version=cfg.api_version or DEFAULT_API_VERSION,
            timeout=int(cfg.timeout * 1000),
            headers=dict(cfg.extra_headers) or None,
            retry_options=types.HttpRetryOptions(attempts=1),
            httpx_async_client=http,
        )
        client = genai.Client(vertexai=False, api_key=self.api_key, http_options=http_options)
        return client, http, ErrorMapper(sdk_errors)

    async def _close(self) -> None:
        client, self._client = self._client, None
        http, self._http = self._http, None
        if client is not None and client is not self._injected:
            await client.aio.aclose()
            client.close()
        if http is not None and http is not self._injected_http:
            await http.aclose()

    # -- operations -----------------------------------------------------------------------------------------

    def _prepare(self, messages: Sequence[MessageInput], kwargs: Mapping[str, Any]
                 ) -> tuple[dict[str, Any], CallOptions, dict[str, Any] | None]:
        self._ensure_ready()
        body, call = build_request(to_messages(messages), kwargs, self._defaults)
        http_options: dict[str, Any] | None = None
        if call.timeout is not None or call.headers:
            http_options = {}
            if call.timeout is not None:
                http_options["timeout"] = int(call.timeout * 1000)
            if call.headers:
                http_options["headers"] = call.headers
        return body, call, http_options

    async def chat(self, messages: Sequence[MessageInput], **kwargs: Any) -> LLMResponse:
        """Send the whole conversation and return the answer (candidate 0)."""
        started = time.perf_counter()
        body, call, http_options = self._prepare(messages, kwargs)
        assert self._transport is not None and self._errors is not None
        async with self._errors.scope(call.model):
            data, headers = await self._transport.generate(model_path(call.model), body, http_options)
        try:
            result = decode_response(data, request_id=headers.get("x-request-id"))
        except (AttributeError, KeyError, TypeError) as exc:
            raise ResponseParsingError(f"unexpected response shape: {exc!r}", provider=PROVIDER, model=call.model,
                                       body=data) from exc
        if not result.model:
            result.model = call.model
        result.duration = time.perf_counter() - started
        return result

    async def _stream(self, messages: list[Message], **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        body, call, http_options = self._prepare(messages, kwargs)
        assert self._transport is not None and self._errors is not None
        acc = StreamAccumulator(PROVIDER, call.model)
        decoder = StreamDecoder(acc)
        chunks = self._transport.stream(model_path(call.model), body, http_options)
        try:
            while True:
                try:
                    data = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise self._stream_failure(exc, acc, call.model) from exc
                try:
                    pieces = decoder.feed(data)
                except (AttributeError, KeyError, TypeError) as exc:
                    raise ResponseParsingError(f"unexpected stream chunk: {exc!r}", provider=PROVIDER,
                                               model=call.model) from exc
                for piece in pieces:
                    yield piece
        finally:
            await chunks.aclose()
        if not decoder.complete:
            # Gemini has no end-of-stream event: a stream is whole once a finish reason (or a block) arrived.
            raise self._stream_failure(NetworkError("the stream ended before a finish reason", provider=PROVIDER,
                                                    model=call.model), acc, call.model)
        decoder.finish()
        yield acc.final_chunk()

    def _stream_failure(self, exc: Exception, acc: StreamAccumulator, model: str) -> LLMError:
        assert self._errors is not None
        mapped = exc if isinstance(exc, LLMError) else self._errors.translate(exc, model)
        if mapped is None:
            if isinstance(exc, ValueError):  # a chunk that is not JSON: the stream was cut mid-event
                mapped = NetworkError(f"undecodable stream chunk: {exc}", provider=PROVIDER, model=model)
            else:
                return ProviderError(f"stream failed: {exc!r}", provider=PROVIDER, model=model)
        if acc.chunk_count and isinstance(mapped, NetworkError):
            # Content already reached the caller: the request cannot be retried or fall back transparently.
            return StreamInterruptedError(mapped.message, provider=PROVIDER, model=model,
                                          partial_content=acc.content, partial_usage=acc.usage)
        return mapped

    async def count_tokens(self, messages: Sequence[MessageInput], **kwargs: Any) -> int:
        """Tokens of the request's contents, system instruction and tools (``countTokens``; free)."""
        body, call, _ = self._prepare(messages, kwargs)
        path = model_path(call.model)
        request = {"generateContentRequest": {"model": path, **body}}
        assert self._transport is not None and self._errors is not None
        async with self._errors.scope(call.model):
            data = await self._transport.count_tokens(path, request)
        return int(data.get("totalTokens") or 0)

    async def embed(self, inputs: str | Sequence[str], **kwargs: Any) -> EmbeddingResponse:
        """Embed texts with ``batchEmbedContents``, 100 texts per request, vectors in input order.

        Keyword arguments: ``model`` (default ``options.embedding_model`` or ``gemini-embedding-001``),
        ``task_type`` (e.g. ``RETRIEVAL_QUERY``), ``dimensions`` (``outputDimensionality``), ``title``.
        """
        self._ensure_ready()
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if not texts:
            raise ValidationError("embed needs at least one input", provider=PROVIDER)
        model = kwargs.get("model") or self.config.options.get("embedding_model") or DEFAULT_EMBEDDING_MODEL
        path = model_path(str(model))
        started = time.perf_counter()
        vectors: list[list[float]] = []
        usage = None
        assert self._transport is not None and self._errors is not None
        async with self._errors.scope(str(model)):
            for start in range(0, len(texts), EMBED_BATCH_SIZE):
                body = build_embed_request(str(model), texts[start:start + EMBED_BATCH_SIZE], kwargs)
                data = await self._transport.embed(path, body)
                vectors.extend(decode_embeddings(data))
                batch_usage = usage_from(data.get("usageMetadata"))
                if batch_usage is not None:
                    usage = batch_usage if usage is None else usage + batch_usage
        if len(vectors) != len(texts):
            raise ResponseParsingError(f"asked for {len(texts)} embeddings, got {len(vectors)}", provider=PROVIDER,
                                       model=str(model))
        return EmbeddingResponse(embeddings=vectors, provider=PROVIDER, model=str(model), usage=usage,
                                 duration=time.perf_counter() - started)

    async def health_check(self) -> bool:
        """True when the API describes the configured model (``GET models/{model}``: costs no tokens)."""
        if not self._initialized:
            return False
        assert self._transport is not None and self._errors is not None
        try:
            async with self._errors.scope(self.model):
                data = await self._transport.get_model(model_path(self.model))
        except LLMError:
            return False
        return bool(data.get("name"))


def _warm_lazy_imports() -> None:
    """Import what httpx2/anyio otherwise import on the first request, inside the event loop (~30 ms)."""
    import importlib

    try:
        importlib.import_module("anyio._backends._asyncio")
    except ImportError:  # another anyio layout: the first request pays for it instead
        pass
