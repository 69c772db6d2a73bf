"""``OpenAIResponsesProvider``: OpenAI's Responses API over our native client (default) or the ``openai`` SDK.

Both transports share the wire mapping (:mod:`._convert`, :mod:`._decode`, the OpenAI error mapping) and the
stream loop (SSE framed by :class:`spoon_llm.transport.SSEParser`, each event's JSON decoded once), so they
report the same results. The native transport posts the JSON to ``{base_url}/responses`` over one aiohttp
session per deployment with the headers the SDK sends (``Authorization: Bearer``, ``OpenAI-Organization`` /
``OpenAI-Project``); the SDK transport calls ``client.responses.with_raw_response.create(...)``, so the SDK
builds and sends the request while our mapping decodes the bytes (no SDK model objects). Neither retries
(SDK: ``max_retries=0``): the manager owns retries.

Azure OpenAI's v1 API speaks the same format: ``base_url = "https://<resource>.openai.azure.com/openai/v1"``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..._headers import pacing_headers
from ...errors import (
    DECODE_FAULTS,
    LLMError,
    NetworkError,
    ResponseParsingError,
    ValidationError,
    malformed,
    safe_cause,
)
from ...interface import ProviderMetadata, StreamCallback
from ...transport import SSEParser
from ...types import LLMResponse, LLMResponseChunk, Message, MessageInput, to_messages
from .._builtin import builtin_capabilities
from .._common import (
    CallOptions,
    DualTransportProvider,
    decoded_answer,
    httpx_limits,
    httpx_timeout,
    stream_failure,
    warm_lazy_imports,
)
from .._sse_stream import JsonEvents, sse_stream
from .._stream import StreamAccumulator
from .._transport import ResponseStream, VendorTransport, json_answer
from ..base import require_sdk
from ..openai._transport import native_headers
from ._convert import PROVIDER, RequestDefaults, build_request
from ._decode import StreamDecoder, decode_response, response_error
from ._transport import MODELS, RESPONSES, NativeTransport, SdkTransport

if TYPE_CHECKING:
    import httpx2
    from openai import AsyncOpenAI

__all__ = ["OpenAIResponsesProvider"]


class OpenAIResponsesProvider(DualTransportProvider):
    """OpenAI models through the Responses API (``POST /v1/responses``), also Azure OpenAI's ``/openai/v1``.

    Configuration: ``api_key`` (``OPENAI_API_KEY``), ``model``, ``base_url`` (default
    ``https://api.openai.com/v1``), ``transport`` (``native`` by default, ``sdk``), ``organization``,
    ``project``, ``timeout``/``connect_timeout``, pool limits, ``max_tokens`` (sent as ``max_output_tokens``),
    ``temperature``, ``top_p``, ``extra_headers`` and ``extra_body``.

    Per-call keyword arguments: ``model``, ``max_tokens``/``max_output_tokens``, ``temperature``, ``top_p``,
    ``tools`` (function tools in any of our shapes, built-in tools as the API's dicts), ``tool_choice``,
    ``parallel_tool_calls``, ``response_format``/``json``/``json_schema`` (-> ``text.format``), ``text``,
    ``reasoning_effort``/``reasoning``, ``instructions``, ``include``, ``background``, ``store``,
    ``previous_response_id``, ``conversation``, ``metadata``, ``user``, ``truncation``, ``service_tier``,
    ``prompt_cache_key``, ``safety_identifier``, ``top_logprobs``, ``max_tool_calls``, ``extra_headers``,
    ``extra_body``, ``timeout``.

    Example::

        provider = OpenAIResponsesProvider()
        await provider.initialize({"api_key": "...", "model": "gpt-5-mini"})
        response = await provider.chat([{"role": "user", "content": "Hello"}], reasoning_effort="low")
    """

    provider_name = PROVIDER
    capabilities = builtin_capabilities(PROVIDER)
    default_model: ClassVar[str | None] = "gpt-4.1-mini"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    #: Models listed in metadata when the configuration names none (``list_models()`` asks the API).
    known_models: ClassVar[tuple[str, ...]] = (
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini",
        "o3", "o4-mini",
    )
    #: The deployment's transport (native or SDK), set once either client is ready.
    _transport: VendorTransport

    def __init__(self, client: AsyncOpenAI | None = None, http_client: httpx2.AsyncClient | None = None) -> None:
        """Create the provider; ``initialize`` builds the client.

        ``client`` is a ready-made ``AsyncOpenAI`` to use instead; ``http_client`` an ``httpx2.AsyncClient`` for
        the client we build (tests inject an ``httpx2.MockTransport`` this way). Either means the SDK transport;
        the caller keeps ownership of both and closes them.
        """
        super().__init__(client, http_client)
        self._defaults = RequestDefaults(model="")

    # -- lifecycle ------------------------------------------------------------------------------------------

    def _native_headers(self) -> dict[str, str]:
        return native_headers(self.config, self.api_key, self.config.extra_headers, env_defaults=False)

    def _configure(self) -> None:
        cfg = self.config
        self._defaults = RequestDefaults(model=self.model, max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                                         top_p=cfg.top_p, extra_body=dict(cfg.extra_body))
        if self._native is not None:
            self._transport = NativeTransport(self._native, self.base_url or "", PROVIDER, keyless=False)
        else:
            self._transport = SdkTransport(self._client)

    def _build_sdk(self) -> Any:
        # The SDK is imported here, in a worker thread, never when this module is imported.
        openai = require_sdk("openai", "openai")
        warm_lazy_imports()
        if self._injected is not None:
            client: Any = self._injected
        else:
            cfg = self.config
            timeout = httpx_timeout(cfg)
            http = self._injected_http or openai.DefaultAsyncHttpxClient(timeout=timeout, limits=httpx_limits(cfg))
            client = openai.AsyncOpenAI(
                api_key=self.api_key, base_url=self.base_url, organization=cfg.organization, project=cfg.project,
                max_retries=0, timeout=timeout, http_client=http, default_headers=dict(cfg.extra_headers) or None,
            )
            # As on the native transport: never forward OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment.
            client.organization = cfg.organization
            client.project = cfg.project
        return client

    async def _close_sdk(self, client: Any) -> None:
        if self._injected_http is None:  # closing the SDK client closes its HTTP client, which may be the caller's
            await client.close()

    def _translate_sdk(self, exc: BaseException, model: str | None) -> LLMError | None:
        return self._transport.translate(exc, model)

    # -- plumbing -------------------------------------------------------------------------------------------

    def _prepare(self, messages: Sequence[MessageInput], kwargs: Mapping[str, Any],
                 stream: bool = False) -> tuple[dict[str, Any], CallOptions]:
        self._ensure_ready()
        return build_request(_parse(messages), kwargs, self._defaults, stream=stream)

    @staticmethod
    def _decode(content: bytes, model: str | None) -> Any:
        return json_answer(content, provider=PROVIDER, model=model)

    async def _post(self, body: Mapping[str, Any], call: CallOptions) -> tuple[Any, Mapping[str, str]]:
        """One non-streamed request on the deployment's transport: the decoded 2xx JSON and the response headers."""
        content, headers = await self._transport.post(RESPONSES, body, call.model, call.headers, call.timeout)
        return self._decode(content, call.model), headers

    async def _open_stream(self, body: Mapping[str, Any], call: CallOptions) -> ResponseStream:
        """POST a streamed request; the open response."""
        return await self._transport.open_stream(RESPONSES, body, call.model, call.headers, call.timeout)

    # -- operations -----------------------------------------------------------------------------------------

    async def chat(self, messages: Sequence[MessageInput], **kwargs: Any) -> LLMResponse:
        """Send the conversation and return the whole answer."""
        started = time.perf_counter()
        body, call = self._prepare(messages, kwargs)
        data, headers = await self._post(body, call)
        if isinstance(data, Mapping) and data.get("error") and "status" not in data:
            raise response_error(data["error"], call.model)  # an error object under a 200, as chat_stream reports it
        answer = decoded_answer(decode_response, data, request_id=headers.get("x-request-id"), provider=PROVIDER,
                                model=call.model, started=started)
        pacing = pacing_headers(headers)
        if pacing:
            answer.metadata["rate_limit_headers"] = pacing  # the rate limiter paces the key from these
        return answer

    async def chat_stream(self, messages: Sequence[MessageInput], callbacks: Sequence[StreamCallback] | None = None,
                          **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        """Stream the answer; each chunk is also passed to every callback (sync or async) in order."""
        self._ensure_ready()
        async for chunk in super().chat_stream(_parse(messages), callbacks, **kwargs):
            yield chunk

    async def _stream(self, messages: list[Message], **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        body, call = self._prepare(messages, kwargs, stream=True)
        response = await self._open_stream(body, call)
        acc = StreamAccumulator(PROVIDER, call.model)
        acc.request_id = response.headers.get("x-request-id")
        pacing = pacing_headers(response.headers)
        if pacing:
            acc.metadata["rate_limit_headers"] = pacing
        decoder = StreamDecoder(acc)
        try:
            if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
                # A server that answered a stream request with one JSON response object.
                try:
                    content = await response.aread()
                except Exception as exc:
                    raise self._stream_failure(exc, acc, call.model) from safe_cause(exc)
                data = self._decode(content, call.model)
                try:
                    self._feed_json(decoder, data, call.model)
                except DECODE_FAULTS as exc:
                    raise malformed("the answer", data, exc, provider=PROVIDER, model=call.model) from exc
            else:
                parser = SSEParser(max_event_bytes=self.config.max_event_bytes,
                                   max_stream_bytes=self.config.max_stream_bytes, provider=PROVIDER, model=call.model)
                events = JsonEvents(decoder, acc, provider=PROVIDER, model=call.model,
                                    closing_event="response.completed", undecodable_is_cut=True)
                async for chunk in sse_stream(response, events, parser,
                                              lambda exc: self._stream_failure(exc, acc, call.model)):
                    yield chunk
                return
        finally:
            await response.aclose()
        if not decoder.done:
            raise self._cut_short("the stream ended before response.completed", acc, call.model)
        try:
            chunks = [*decoder.finish(), acc.final_chunk()]
        except DECODE_FAULTS as exc:  # the response object's fields have the wrong types
            raise malformed("the answer", str(exc), exc, provider=PROVIDER, model=call.model) from exc
        for chunk in chunks:
            yield chunk

    @staticmethod
    def _feed_json(decoder: StreamDecoder, data: Any, model: str) -> None:
        if not isinstance(data, Mapping):
            raise ResponseParsingError("the stream answer is neither SSE nor a response object", provider=PROVIDER,
                                       model=model)
        if data.get("error") and "status" not in data:
            decoder.feed({"type": "error", "error": data["error"]})  # raises the mapped error
        decoder.feed({"type": f"response.{data.get('status') or 'completed'}", "response": data})
        decoder.done = True

    @staticmethod
    def _cut_short(message: str, acc: StreamAccumulator, model: str) -> LLMError:
        # Before any chunk reached the caller the request can safely be retried elsewhere; after, it cannot.
        return stream_failure(NetworkError(message, provider=PROVIDER, model=model), acc, PROVIDER, model)

    async def list_models(self) -> list[str]:
        """Ids of the models this key can use (``GET /models``; costs no tokens)."""
        data = await self._get_models()
        try:
            return [str(item["id"]) for item in data.get("data") or ()]
        except DECODE_FAULTS as exc:
            raise malformed("the model list", data, exc, provider=PROVIDER, model=None) from exc

    async def _get_models(self) -> Any:
        self._ensure_ready()
        return self._decode(await self._transport.get(MODELS, None, None), None)

    def get_metadata(self) -> ProviderMetadata:
        """Name, capabilities, defaults and models of this provider."""
        meta = super().get_metadata()
        if not meta.available_models:
            meta.available_models = list(self.known_models)
        return meta

    async def health_check(self) -> bool:
        """True when the API answers a model listing (free: no response is paid for)."""
        if not self._initialized:
            return False
        try:
            await self._get_models()
        except LLMError:
            return False
        return True


def _parse(messages: Sequence[MessageInput] | str) -> list[Message]:
    try:
        return to_messages(messages)
    except ValueError as exc:  # pydantic's ValidationError: ours names the provider and stays in our tree
        raise ValidationError(f"invalid message: {exc}", provider=PROVIDER) from None

