"""``GeminiProvider``: the Gemini API (generativelanguage) over our native client or ``google-genai``.

Both transports implement :class:`._transport.GeminiTransport` (the shared ``VendorTransport`` request surface
plus a chunk-JSON ``events`` stream) and share the wire mapping, so they report the same results:

* ``transport = "native"`` (default): :class:`._native.NativeTransport`, one aiohttp session per deployment with
  the SDK's headers (``x-goog-api-key``, ``X-Server-Timeout``), SSE decoded once per event;
* ``transport = "sdk"``: one ``genai.Client`` per deployment, built once in ``initialize`` with the configured
  base URL, API version, timeout, headers, our own ``httpx2.AsyncClient`` (pool limits from the configuration)
  and SDK retries off (``HttpRetryOptions(attempts=1)``: the manager owns retries). Only ``client.aio`` is used.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import (
    DECODE_FAULTS,
    LLMError,
    NetworkError,
    ResponseParsingError,
    ValidationError,
    excerpt,
    malformed,
    safe_cause,
)
from ...transport import merge_headers, user_agent
from ...types import EmbeddingResponse, LLMResponse, LLMResponseChunk, Message, MessageInput, to_messages
from .._builtin import builtin_capabilities
from .._common import (
    CallOptions,
    DualTransportProvider,
    decoded_answer,
    httpx_limits,
    httpx_timeout,
    warm_lazy_imports,
)
from .._stream import StreamAccumulator
from .._transport import json_answer
from ..base import require_sdk
from ._convert import RequestDefaults, build_embed_request, build_request, model_path
from ._decode import StreamDecoder, decode_embeddings, decode_response, usage_from
from ._errors import ErrorMapper, in_band_error
from ._native import NativeTransport, server_timeout
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


class GeminiProvider(DualTransportProvider):
    """Gemini models through the Gemini API (``generativelanguage.googleapis.com``).

    Configuration: ``api_key``, ``model``, ``base_url``, ``transport`` (``native`` by default, ``sdk``),
    ``api_version`` (default ``v1beta``), ``timeout``,
    pool limits (``max_connections``, ``max_keepalive_connections``, ``keepalive_expiry``), ``max_tokens``,
    ``temperature``, ``top_p``, ``extra_headers``, ``extra_body``; ``options.schema_mode`` (``openapi``: JSON
    schemas converted to Gemini's schema subset, the default; ``json_schema``: sent unchanged as
    ``parametersJsonSchema``/``responseJsonSchema``), ``options.embedding_model`` and
    ``options.gemini_sdk_api = "public"`` to use only the SDK's public typed methods (SDK transport).

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
    capabilities = builtin_capabilities(PROVIDER)
    default_model: ClassVar[str | None] = "gemini-2.5-flash"
    default_base_url: ClassVar[str | None] = "https://generativelanguage.googleapis.com/"
    api_key_env: ClassVar[str | None] = "GEMINI_API_KEY"

    def __init__(self, client: Any = None, http_client: httpx2.AsyncClient | None = None) -> None:
        """Create the provider; ``initialize`` builds the client.

        ``client`` is a ready-made ``google.genai.Client`` to use instead (other credentials, tests);
        ``http_client`` an ``httpx2.AsyncClient`` for the client we build (tests inject an
        ``httpx2.MockTransport`` this way). Either means the SDK transport; the caller keeps ownership of both.
        """
        super().__init__(client, http_client)
        self._http: httpx2.AsyncClient | None = None
        self._transport: GeminiTransport | None = None
        self._errors: ErrorMapper | None = None
        self._defaults = RequestDefaults(model="")

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def api_version(self) -> str:
        """The API version in every URL (``v1beta`` unless configured)."""
        return self.config.api_version or DEFAULT_API_VERSION

    def _native_headers(self) -> dict[str, str]:
        agent = user_agent()
        headers = {"Content-Type": "application/json", "User-Agent": agent, "x-goog-api-client": agent}
        if self.api_key:
            headers["x-goog-api-key"] = self.api_key
        timeout = server_timeout(self.config.timeout)
        if timeout is not None:
            headers["X-Server-Timeout"] = timeout  # the deadline hint google-genai sends
        return merge_headers(headers, dict(self.config.extra_headers))

    def _new_transport(self) -> GeminiTransport:
        """The transport over the client ``_setup`` opened (native or SDK)."""
        if self._native is not None:
            return NativeTransport(self._native, self.base_url or "", self.api_version,
                                   provider=self.provider_name, auth=self._native_auth(),
                                   max_event_bytes=self.config.max_event_bytes,
                                   max_stream_bytes=self.config.max_stream_bytes)
        return select_transport(self._client, self.config.options.get("gemini_sdk_api"), self._translate_sdk)

    def _native_auth(self) -> Callable[[], Awaitable[Mapping[str, str]]] | None:
        """Headers to fetch for each native request (``None``: the key in the session headers is all)."""
        return None

    def _model_path(self, model: str) -> str:
        """The resource path of ``model`` in request URLs (``models/<id>``)."""
        return model_path(model)

    def _decode(self, data: Any, *, request_id: str | None = None) -> LLMResponse:
        return decode_response(data, request_id=request_id, provider=self.provider_name)

    def _configure(self) -> None:
        options = self.config.options
        self._transport = self._new_transport()
        self._defaults = RequestDefaults(
            model=self.model,
            max_tokens=self.config.max_tokens,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            schema_mode=str(options.get("schema_mode", "openapi")),
            extra_body=dict(self.config.extra_body),
        )

    def _build_sdk(self) -> Any:
        # httpx2 and the SDK are imported here, in a worker thread, never when this module is imported.
        import httpx2

        genai = require_sdk("google.genai", "gemini")
        warm_lazy_imports()
        types = require_sdk("google.genai.types", "gemini")
        self._errors = ErrorMapper(require_sdk("google.genai.errors", "gemini"), self.provider_name)
        if self._injected is not None:
            return self._injected
        cfg = self.config
        http = self._injected_http
        if http is None:
            from ...transport._strict import StrictTransport  # imports httpx2, like this method

            # The SDK decodes text leniently and frames SSE itself: this wrapper holds it to the native rules.
            strict = StrictTransport(httpx2.AsyncHTTPTransport(limits=httpx_limits(cfg)), provider=self.provider_name,
                                     max_event_bytes=cfg.max_event_bytes, max_stream_bytes=cfg.max_stream_bytes)
            http = httpx2.AsyncClient(timeout=httpx_timeout(cfg), transport=strict)
        self._http = http
        http_options = types.HttpOptions(
            base_url=self.base_url,
            api_version=self.api_version,
            timeout=int(cfg.timeout * 1000),
            headers=dict(cfg.extra_headers) or None,
            retry_options=types.HttpRetryOptions(attempts=1),
            httpx_async_client=http,
        )
        return self._new_sdk_client(genai, http_options)

    def _new_sdk_client(self, genai: Any, http_options: Any) -> Any:
        """The ``google.genai.Client`` of this deployment, over ``http_options`` (the Gemini API: the key)."""
        return genai.Client(vertexai=False, api_key=self.api_key, http_options=http_options)

    async def _close_sdk(self, client: Any) -> None:
        http, self._http = self._http, None
        await client.aio.aclose()
        client.close()
        if http is not None and http is not self._injected_http:
            await http.aclose()

    def _translate_sdk(self, exc: BaseException, model: str | None) -> LLMError | None:
        return self._errors.translate(exc, model) if self._errors is not None else None

    # -- operations -----------------------------------------------------------------------------------------

    def _prepare(self, messages: Sequence[MessageInput], kwargs: Mapping[str, Any]
                 ) -> tuple[dict[str, Any], CallOptions]:
        self._ensure_ready()
        return build_request(to_messages(messages), kwargs, self._defaults)

    async def _post_json(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None = None,
                         timeout: float | None = None) -> tuple[dict[str, Any], Mapping[str, str]]:
        """POST on the deployment's transport: the decoded 200 body (``{}`` for none) and the response headers."""
        assert self._transport is not None
        content, response_headers = await self._transport.post(path, body, model, headers, timeout)
        data = json_answer(content, provider=self.provider_name, model=model) if content else {}
        return data, response_headers

    async def chat(self, messages: Sequence[MessageInput], **kwargs: Any) -> LLMResponse:
        """Send the whole conversation and return the answer (candidate 0)."""
        started = time.perf_counter()
        body, call = self._prepare(messages, kwargs)
        async with self._sdk_errors(call.model):
            data, headers = await self._post_json(f"{self._model_path(call.model)}:generateContent", body,
                                                  call.model, call.headers, call.timeout)
        if not isinstance(data, dict):  # a number, string or list under a 200 is no answer
            raise ResponseParsingError(f"expected a JSON object, got {excerpt(data)}", provider=self.provider_name,
                                       model=call.model)
        if not data or "error" in data and "candidates" not in data:
            # An empty 200, or an error object under one: never an empty answer.
            if data:
                raise in_band_error(data, 200, headers, model=call.model, provider=self.provider_name)
            raise ResponseParsingError("the answer is empty", provider=self.provider_name, model=call.model)
        return decoded_answer(self._decode, data, request_id=headers.get("x-request-id"),
                              provider=self.provider_name, model=call.model, started=started)

    async def _stream(self, messages: list[Message], **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        body, call = self._prepare(messages, kwargs)
        assert self._transport is not None
        acc = StreamAccumulator(self.provider_name, call.model)
        decoder = StreamDecoder(acc)
        chunks = self._transport.events(f"{self._model_path(call.model)}:streamGenerateContent?alt=sse", body,
                                        call.model, call.headers, call.timeout)
        try:
            while True:
                try:
                    data = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise self._stream_failure(exc, acc, call.model) from safe_cause(exc)
                try:
                    pieces = decoder.feed(data)
                except DECODE_FAULTS as exc:
                    raise self._stream_failure(ResponseParsingError(
                        f"unexpected stream chunk: {exc!r}", provider=self.provider_name, model=call.model),
                        acc, call.model) from exc
                for piece in pieces:
                    yield piece
        finally:
            await chunks.aclose()
        if not decoder.complete:
            # Gemini has no end-of-stream event: a stream is whole once a finish reason (or a block) arrived.
            raise self._stream_failure(NetworkError("the stream ended before a finish reason",
                                                    provider=self.provider_name, model=call.model), acc, call.model)
        try:
            decoder.finish()
            final = acc.final_chunk()
        except DECODE_FAULTS as exc:  # usage or tool calls of the wrong type surface only now
            raise self._stream_failure(malformed("the stream's closing state", str(exc), exc,
                                                 provider=self.provider_name, model=call.model),
                                       acc, call.model) from exc
        yield final

    async def count_tokens(self, messages: Sequence[MessageInput], **kwargs: Any) -> int:
        """Tokens of the request's contents, system instruction and tools (``countTokens``; free)."""
        body, call = self._prepare(messages, kwargs)
        path = model_path(call.model)
        request = {"generateContentRequest": {"model": path, **body}}
        async with self._sdk_errors(call.model):
            data = (await self._post_json(f"{path}:countTokens", request, call.model))[0]
        return self._token_count(data, call.model)

    def _token_count(self, data: Any, model: str) -> int:
        """``totalTokens`` of a ``countTokens`` answer."""
        try:
            return int(data.get("totalTokens") or 0)
        except DECODE_FAULTS as exc:
            raise malformed("the token count", data, exc, provider=self.provider_name, model=model) from exc

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
        async with self._sdk_errors(str(model)):
            for start in range(0, len(texts), EMBED_BATCH_SIZE):
                body = build_embed_request(str(model), texts[start:start + EMBED_BATCH_SIZE], kwargs)
                data = (await self._post_json(f"{path}:batchEmbedContents", body, str(model)))[0]
                try:
                    vectors.extend(decode_embeddings(data))
                    batch_usage = usage_from(data.get("usageMetadata"))
                except DECODE_FAULTS as exc:
                    raise malformed("the embeddings", data, exc, provider=PROVIDER, model=str(model)) from exc
                if batch_usage is not None:
                    usage = batch_usage if usage is None else usage + batch_usage
        if len(vectors) != len(texts):
            raise ResponseParsingError(f"asked for {len(texts)} embeddings, got {len(vectors)}", provider=PROVIDER,
                                       model=str(model))
        try:
            return EmbeddingResponse(embeddings=vectors, provider=PROVIDER, model=str(model), usage=usage,
                                     duration=time.perf_counter() - started)
        except DECODE_FAULTS as exc:  # a vector holding something other than numbers
            raise malformed("the embeddings", vectors, exc, provider=PROVIDER, model=str(model)) from exc

    async def health_check(self) -> bool:
        """True when the API describes the configured model (``GET models/{model}``: costs no tokens)."""
        if not self._initialized:
            return False
        assert self._transport is not None
        try:
            async with self._sdk_errors(self.model):
                data = await self._get_json(model_path(self.model), self.model)
        except LLMError:
            return False
        return bool(data.get("name"))

    async def _get_json(self, path: str, model: str) -> dict[str, Any]:
        """GET on the deployment's transport: the decoded 200 body (``{}`` for none)."""
        assert self._transport is not None
        content = await self._transport.get(path, None, model)
        return json_answer(content, provider=self.provider_name, model=model) if content else {}

