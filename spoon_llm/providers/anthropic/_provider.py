"""``AnthropicProvider``: the Messages API over our native client (default) or the official ``anthropic`` SDK.

Both transports share the wire mapping (:mod:`._convert`, :mod:`._decode`, :mod:`._errors`) and the stream loop
(SSE framed by :class:`spoon_llm.transport.SSEParser`, each event's JSON decoded once), so they report the same
results. The native transport (``transport = "native"``) posts the JSON itself over one aiohttp session per
deployment, with the headers the SDK sends (``Authorization: Bearer``, ``anthropic-version``, per-call
``anthropic-beta``); the SDK transport (``transport = "sdk"``) goes through ``AsyncAnthropic``'s generic ``post``
with ``cast_to=httpx2.Response``, so the body is decoded by our mapping instead of being built into SDK models
first. Neither retries (SDK: ``max_retries=0``): the manager owns retries.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..._headers import pacing_headers
from ...errors import DECODE_FAULTS, LLMError, ResponseParsingError, excerpt, malformed, safe_cause
from ...transport import SSEParser, loads, merge_headers, user_agent
from ...types import LLMResponse, LLMResponseChunk, Message, MessageInput, to_messages
from .._builtin import builtin_capabilities
from .._common import (
    CallOptions,
    DualTransportProvider,
    decoded_answer,
    httpx_limits,
    httpx_timeout,
    warm_lazy_imports,
)
from .._sse_stream import JsonEvents, sse_stream
from .._stream import StreamAccumulator
from .._transport import ResponseStream, VendorTransport, json_answer
from ..base import require_sdk
from ._convert import RequestDefaults, build_request
from ._decode import StreamDecoder, decode_message
from ._errors import ErrorMapper, error_from_body
from ._transport import NativeTransport, SdkTransport

if TYPE_CHECKING:
    import httpx2
    from anthropic import AsyncAnthropic

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider"]

PROVIDER = "anthropic"
#: The ``anthropic-version`` header the native transport sends unless ``api_version`` is configured: the one the
#: official SDK (anthropic 2.x) sends, so both transports speak the same API version.
ANTHROPIC_VERSION = "2026-10-21"
_MESSAGES = "/v1/messages"
_COUNT_TOKENS = "/v1/messages/count_tokens"
_MODELS = "/v1/models"
# Fields the count_tokens endpoint accepts out of a messages request.
_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                 "cache_control")


class AnthropicProvider(DualTransportProvider):
    """Claude models through Anthropic's Messages API.

    Configuration: ``api_key``, ``model``, ``base_url``, ``transport`` (``native`` by default, ``sdk``),
    ``api_version`` (the ``anthropic-version`` header), ``timeout``/``connect_timeout``, pool limits
    (``max_connections``, ``max_keepalive_connections``, ``keepalive_expiry``), ``max_tokens``,
    ``temperature``, ``extra_headers``, ``extra_body`` and ``options.auto_cache = true`` for the automatic
    prompt-caching policy (breakpoints at the end of tools, system prompt and conversation).

    Per-call keyword arguments: ``model``, ``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``stop``,
    ``tools``, ``tool_choice`` (``auto``/``none``/``required``/a tool name/a dict), ``parallel_tool_calls``,
    ``response_format``/``json``/``json_schema``, ``thinking`` (a token budget, ``True``, ``"adaptive"`` or the
    API's dict), ``reasoning_effort``, ``cache_control``, ``auto_cache``, ``betas``, ``metadata``/``user``,
    ``extra_headers``, ``extra_body``, ``timeout``.

    Example::

        provider = AnthropicProvider()
        await provider.initialize({"api_key": "...", "model": "claude-sonnet-4-5"})
        response = await provider.chat([{"role": "user", "content": "Hello"}], max_tokens=256)
    """

    provider_name = PROVIDER
    capabilities = builtin_capabilities(PROVIDER)
    #: The deployment's transport (native or SDK), set once either client is ready.
    _transport: VendorTransport
    default_model: ClassVar[str | None] = "claude-sonnet-4-5"
    default_base_url: ClassVar[str | None] = "https://api.anthropic.com"
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"

    def __init__(self, client: AsyncAnthropic | None = None, http_client: httpx2.AsyncClient | None = None) -> None:
        """Create the provider; ``initialize`` builds the client.

        ``client`` is a ready-made ``AsyncAnthropic`` to use instead (custom auth, tests); ``http_client`` an
        ``httpx2.AsyncClient`` for the client we build (tests inject an ``httpx2.MockTransport`` this way). Either
        means the SDK transport; the caller keeps ownership of both and closes them.
        """
        super().__init__(client, http_client)
        self._errors: ErrorMapper | None = None
        self._defaults = RequestDefaults(model="")
        self._raw: type[httpx2.Response] | None = None  # ``cast_to`` that makes the SDK hand back raw bytes
        self._urls: dict[str, Any] = {}
        self._base = ""

    # -- lifecycle ------------------------------------------------------------------------------------------

    def _native_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": user_agent(),
                   "anthropic-version": self.config.api_version or ANTHROPIC_VERSION}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"  # what anthropic 2.x sends for an API key
        return merge_headers(headers, dict(self.config.extra_headers))

    def _configure(self) -> None:
        cfg = self.config
        self._defaults = RequestDefaults(
            model=self.model,
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            auto_cache=bool(cfg.options.get("auto_cache", False)),
            extra_body=dict(cfg.extra_body),
        )
        if self._native is not None:
            self._base = (self.base_url or "").rstrip("/")
            self._urls = {}
            self._transport = NativeTransport(self._native, self._target, PROVIDER)
        else:
            assert self._raw is not None
            self._transport = SdkTransport(self._client, self._raw, self._translate_sdk)

    def _build_sdk(self) -> Any:
        sdk = self._sdk_module()
        if self._injected is not None:
            return self._injected
        cfg = self.config
        headers = dict(cfg.extra_headers)
        if cfg.api_version:
            headers.setdefault("anthropic-version", cfg.api_version)
        timeout, http_client = self._sdk_http(sdk)
        return sdk.AsyncAnthropic(
            api_key=self.api_key,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
            default_headers=headers or None,
        )

    def _sdk_module(self) -> Any:
        """The anthropic SDK, with what the SDK path needs from it set up (raw responses, error mapping)."""
        # httpx2 and the SDK are imported here, in a worker thread, never when this module is imported.
        import httpx2

        sdk = require_sdk("anthropic", "anthropic")
        warm_lazy_imports()
        self._raw = httpx2.Response
        self._errors = ErrorMapper(sdk)
        return sdk

    def _sdk_http(self, sdk: Any) -> tuple[Any, Any]:
        """The SDK client's timeout and HTTP client (the injected one, else a pool sized from the config)."""
        timeout = httpx_timeout(self.config)
        return timeout, self._injected_http or sdk.DefaultAsyncHttpxClient(timeout=timeout,
                                                                            limits=httpx_limits(self.config))

    async def _close_sdk(self, client: Any) -> None:
        if self._injected_http is None:  # closing the SDK client closes its HTTP client, which may be the caller's
            await client.close()

    def _translate_sdk(self, exc: BaseException, model: str | None) -> LLMError | None:
        return self._errors.translate(exc, model) if self._errors is not None else None

    # -- plumbing -------------------------------------------------------------------------------------------

    def _prepare(self, messages: Sequence[MessageInput], kwargs: Mapping[str, Any],
                 stream: bool = False) -> tuple[dict[str, Any], CallOptions]:
        self._ensure_ready()
        return build_request(to_messages(messages), kwargs, self._defaults, stream=stream)

    @staticmethod
    def _decode(content: bytes, model: str | None) -> Any:
        return json_answer(content, provider=PROVIDER, model=model)

    def _target(self, path: str, body: Mapping[str, Any] | None, model: str,
                stream: bool = False) -> tuple[Any, Mapping[str, Any] | None]:
        """The native transport's URL and body for an API path (Claude on Vertex AI moves the model into the URL)."""
        url = self._urls.get(path)
        if url is None:
            assert self._native is not None
            url = self._urls[path] = self._native.url(self._base + path)
        return url, body

    async def _exchange(self, method: str, path: str, body: Mapping[str, Any] | None,
                        call: CallOptions) -> tuple[Any, Mapping[str, str]]:
        """One request on the deployment's transport: the decoded 2xx JSON and the response headers."""
        if method == "GET":
            return self._decode(await self._transport.get(path, call.timeout, call.model), call.model), {}
        content, headers = await self._transport.post(path, body or {}, call.model, call.headers, call.timeout)
        return self._decode(content, call.model), headers

    async def _open_stream(self, body: Mapping[str, Any], call: CallOptions) -> ResponseStream:
        """POST a streamed request; the open response (``headers``, ``aiter_bytes()``, ``aclose()``)."""
        return await self._transport.open_stream(_MESSAGES, body, call.model, call.headers, call.timeout)

    # -- operations -----------------------------------------------------------------------------------------

    async def chat(self, messages: Sequence[MessageInput], **kwargs: Any) -> LLMResponse:
        """Send the conversation and return the whole answer."""
        started = time.perf_counter()
        body, call = self._prepare(messages, kwargs)
        data, headers = await self._exchange("POST", _MESSAGES, body, call)
        if not isinstance(data, dict) or "error" in data and "content" not in data:
            raise _not_an_answer(data, headers, call.model)
        answer = decoded_answer(decode_message, data, request_id=headers.get("request-id"), provider=PROVIDER,
                                model=call.model, started=started)
        answer.provider = self.provider_name  # Claude on Vertex AI answers with the same mapping
        pacing = pacing_headers(headers)
        if pacing:
            answer.metadata["rate_limit_headers"] = pacing  # the rate limiter paces the key from these
        return answer

    async def _stream(self, messages: list[Message], **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        body, call = self._prepare(messages, kwargs, stream=True)
        response = await self._open_stream(body, call)
        acc = StreamAccumulator(self.provider_name, call.model)
        acc.request_id = response.headers.get("request-id")
        pacing = pacing_headers(response.headers)
        if pacing:
            acc.metadata["rate_limit_headers"] = pacing
        decoder = StreamDecoder(acc)
        content_type = response.headers.get("content-type") or "text/event-stream"
        if "text/event-stream" not in content_type:  # an HTML page or a JSON error under a 200
            try:
                content = await response.aread()
            except Exception as exc:
                raise self._stream_failure(exc, acc, call.model) from safe_cause(exc)
            finally:
                await response.aclose()
            try:
                data = loads(content)
            except ValueError:
                data = None
            if isinstance(data, dict) and "error" in data:
                raise _not_an_answer(data, response.headers, call.model)
            raise ResponseParsingError(f"expected an event stream, got {content_type}: {excerpt(content)}",
                                       provider=PROVIDER, model=call.model)
        parser = SSEParser(max_event_bytes=self.config.max_event_bytes,
                           max_stream_bytes=self.config.max_stream_bytes, provider=PROVIDER, model=call.model)
        events = JsonEvents(decoder, acc, provider=PROVIDER, model=call.model, closing_event="message_stop")
        try:
            async for chunk in sse_stream(response, events, parser,
                                          lambda exc: self._stream_failure(exc, acc, call.model)):
                yield chunk
        finally:
            await response.aclose()

    async def count_tokens(self, messages: Sequence[MessageInput], **kwargs: Any) -> int:
        """Input tokens of a request (messages, system, tools) from the API's free ``count_tokens`` endpoint."""
        body, call = self._prepare(messages, kwargs)
        count_body = {key: body[key] for key in _COUNT_FIELDS if key in body}
        data, _ = await self._exchange("POST", _COUNT_TOKENS, count_body, call)
        try:
            return int(data["input_tokens"])
        except DECODE_FAULTS as exc:
            raise malformed("the token count", data, exc, provider=PROVIDER, model=call.model) from exc

    async def list_models(self) -> list[str]:
        """Ids of the models this key can use (``GET /v1/models``; costs no tokens)."""
        self._ensure_ready()
        data, _ = await self._exchange("GET", f"{_MODELS}?limit=1000", None, CallOptions(model=""))
        try:
            return [str(item["id"]) for item in data.get("data") or ()]
        except DECODE_FAULTS as exc:
            raise malformed("the model list", data, exc, provider=PROVIDER, model=None) from exc

    async def health_check(self) -> bool:
        """True when the API answers a model listing (free: no completion is paid for)."""
        if not self._initialized:
            return False
        try:
            await self._exchange("GET", f"{_MODELS}?limit=1", None, CallOptions(model=""))
        except LLMError:
            return False
        return True


def _not_an_answer(data: Any, headers: Mapping[str, str], model: str) -> LLMError:
    """A 200 whose body is an error object (the vendor's error) or not an object at all (a parsing error)."""
    if isinstance(data, dict):
        return error_from_body(None, data, headers, model=model)
    return ResponseParsingError(f"expected a message object, got {excerpt(data)}", provider=PROVIDER, model=model)



