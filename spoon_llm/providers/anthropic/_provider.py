"""``AnthropicProvider``: the Messages API through the official ``anthropic`` SDK's ``AsyncAnthropic``.

The SDK is the transport (auth, headers, base URL, connection pool, typed HTTP errors); the wire mapping is
ours (:mod:`._convert`, :mod:`._decode`). Requests go through the client's generic ``post`` with
``cast_to=self._raw``, so the JSON body and SSE events are decoded once by our mapping instead of being
built into SDK models first. The SDK never retries (``max_retries=0``): the manager owns retries.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import (
    LLMError,
    NetworkError,
    ProviderError,
    ResponseParsingError,
    StreamInterruptedError,
    register_secret,
)
from ...interface import ProviderCapability
from ...types import LLMResponse, LLMResponseChunk, Message, MessageInput, to_messages
from .._stream import StreamAccumulator
from ..base import BaseProvider, require_sdk
from ._convert import CallOptions, RequestDefaults, build_request
from ._decode import StreamDecoder, decode_message
from ._errors import ErrorMapper
from ._sse import SSEReader

if TYPE_CHECKING:
    import httpx2
    from anthropic import AsyncAnthropic

__all__ = ["AnthropicProvider"]

PROVIDER = "anthropic"
_MESSAGES = "/v1/messages"
# Fields the count_tokens endpoint accepts out of a messages request.
_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                 "cache_control")


class AnthropicProvider(BaseProvider):
    """Claude models through Anthropic's Messages API.

    Configuration: ``api_key``, ``model``, ``base_url``, ``timeout``/``connect_timeout``, pool limits
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
    capabilities = (
        ProviderCapability.CHAT, ProviderCapability.COMPLETION, ProviderCapability.TOOLS,
        ProviderCapability.STREAMING, ProviderCapability.VISION, ProviderCapability.JSON_MODE,
        ProviderCapability.STRUCTURED_OUTPUT, ProviderCapability.REASONING, ProviderCapability.PROMPT_CACHING,
        ProviderCapability.TOKEN_COUNTING,
    )
    default_model: ClassVar[str | None] = "claude-sonnet-4-5"
    default_base_url: ClassVar[str | None] = "https://api.anthropic.com"
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"

    def __init__(self, client: AsyncAnthropic | None = None, http_client: httpx2.AsyncClient | None = None) -> None:
        """Create the provider; ``initialize`` builds the client.

        ``client`` is a ready-made ``AsyncAnthropic`` to use instead (custom auth, tests); ``http_client`` an
        ``httpx2.AsyncClient`` for the client we build (tests inject an ``httpx2.MockTransport`` this way). The
        caller keeps ownership of either and closes it.
        """
        super().__init__()
        self._injected = client
        self._injected_http = http_client
        self._client: Any = None
        self._errors: ErrorMapper | None = None
        self._defaults = RequestDefaults(model="")
        self._raw: type[httpx2.Response] | None = None  # ``cast_to`` that makes the SDK hand back raw bytes

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def _setup(self) -> None:
        register_secret(self.api_key)
        # Importing the SDK (~0.8 s) and building its TLS context read files: keep both off the event loop.
        self._client, self._errors = await asyncio.to_thread(self._build_client)
        cfg = self.config
        self._defaults = RequestDefaults(
            model=self.model,
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            auto_cache=bool(cfg.options.get("auto_cache", False)),
            extra_body=dict(cfg.extra_body),
        )

    def _build_client(self) -> tuple[Any, ErrorMapper]:
        # httpx2 and the SDK are imported here, in a worker thread, never when this module is imported.
        import httpx2

        sdk = require_sdk("anthropic", "anthropic")
        _warm_lazy_imports()
        self._raw = httpx2.Response
        if self._injected is not None:
            return self._injected, ErrorMapper(sdk)
        cfg = self.config
        timeout = httpx2.Timeout(cfg.timeout, connect=cfg.connect_timeout or cfg.timeout)
        limits = httpx2.Limits(
            max_connections=cfg.max_connections,
            max_keepalive_connections=cfg.max_keepalive_connections,
            keepalive_expiry=cfg.keepalive_expiry,
        )
        http_client = self._injected_http or sdk.DefaultAsyncHttpxClient(timeout=timeout, limits=limits)
        client = sdk.AsyncAnthropic(
            api_key=self.api_key,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
            default_headers=dict(cfg.extra_headers) or None,
        )
        return client, ErrorMapper(sdk)

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is None or client is self._injected:
            return
        if self._injected_http is None:
            await client.close()

    # -- operations -----------------------------------------------------------------------------------------

    def _prepare(self, messages: Sequence[MessageInput], kwargs: Mapping[str, Any],
                 stream: bool = False) -> tuple[dict[str, Any], CallOptions, dict[str, Any]]:
        self._ensure_ready()
        body, call = build_request(to_messages(messages), kwargs, self._defaults, stream=stream)
        options: dict[str, Any] = {}
        if call.timeout is not None:
            options["timeout"] = call.timeout
        if call.headers:
            options["headers"] = call.headers
        return body, call, options

    async def chat(self, messages: Sequence[MessageInput], **kwargs: Any) -> LLMResponse:
        """Send the conversation and return the whole answer."""
        started = time.perf_counter()
        body, call, options = self._prepare(messages, kwargs)
        assert self._errors is not None
        async with self._errors.scope(call.model):
            response = await self._client.post(_MESSAGES, cast_to=self._raw, body=body, options=options)
            data = json.loads(response.content)
        try:
            result = decode_message(data, request_id=response.headers.get("request-id"))
        except (AttributeError, KeyError, TypeError) as exc:
            raise ResponseParsingError(f"unexpected response shape: {exc!r}", provider=PROVIDER, model=call.model,
                                       body=data) from exc
        if not result.model:
            result.model = call.model
        result.duration = time.perf_counter() - started
        return result

    async def _stream(self, messages: list[Message], **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        body, call, options = self._prepare(messages, kwargs, stream=True)
        assert self._errors is not None
        async with self._errors.scope(call.model):
            response = await self._client.post(_MESSAGES, cast_to=self._raw, body=body, options=options,
                                               stream=True, stream_cls=None)
        acc = StreamAccumulator(PROVIDER, call.model)
        acc.request_id = response.headers.get("request-id")
        decoder = StreamDecoder(acc)
        reader = SSEReader()
        chunks = response.aiter_bytes()
        try:
            while True:
                try:
                    raw = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise self._stream_failure(exc, acc, call.model) from exc
                for _, data in reader.feed(raw):
                    chunk = self._feed(decoder, data, acc, call.model)
                    if chunk is not None:
                        yield chunk
            for _, data in reader.flush():
                chunk = self._feed(decoder, data, acc, call.model)
                if chunk is not None:
                    yield chunk
        finally:
            await response.aclose()
        if not decoder.done:
            raise self._cut_short("the stream ended before message_stop", acc, call.model)
        decoder.finish()
        yield acc.final_chunk()

    def _feed(self, decoder: StreamDecoder, data: str, acc: StreamAccumulator,
              model: str) -> LLMResponseChunk | None:
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise self._cut_short(f"undecodable stream event {data[:200]!r}", acc, model) from exc
        try:
            return decoder.feed(event)
        except LLMError:
            raise
        except (AttributeError, KeyError, TypeError) as exc:
            raise ResponseParsingError(f"unexpected stream event {data[:200]!r}", provider=PROVIDER,
                                       model=model) from exc

    def _stream_failure(self, exc: Exception, acc: StreamAccumulator, model: str) -> ProviderError:
        assert self._errors is not None
        mapped = self._errors.translate(exc, model)
        if not isinstance(mapped, ProviderError):
            return ProviderError(f"stream failed: {exc!r}", provider=PROVIDER, model=model)
        if acc.chunk_count and isinstance(mapped, NetworkError):
            return self._cut_short(mapped.message, acc, model)
        return mapped

    @staticmethod
    def _cut_short(message: str, acc: StreamAccumulator, model: str) -> ProviderError:
        # Before any chunk reached the caller the request can safely be retried elsewhere; after, it cannot.
        if not acc.chunk_count:
            return NetworkError(message, provider=PROVIDER, model=model)
        return StreamInterruptedError(message, provider=PROVIDER, model=model, partial_content=acc.content,
                                      partial_usage=acc.usage)

    async def count_tokens(self, messages: Sequence[MessageInput], **kwargs: Any) -> int:
        """Input tokens of a request (messages, system, tools) from the API's free ``count_tokens`` endpoint."""
        body, call, options = self._prepare(messages, kwargs)
        count_body = {key: body[key] for key in _COUNT_FIELDS if key in body}
        assert self._errors is not None
        async with self._errors.scope(call.model):
            response = await self._client.post(f"{_MESSAGES}/count_tokens", cast_to=self._raw,
                                               body=count_body, options=options)
            data = json.loads(response.content)
        return int(data["input_tokens"])

    async def list_models(self) -> list[str]:
        """Ids of the models this key can use (``GET /v1/models``; costs no tokens)."""
        self._ensure_ready()
        assert self._errors is not None
        async with self._errors.scope(None):
            response = await self._client.get("/v1/models", cast_to=self._raw,
                                              options={"params": {"limit": 1000}})
            data = json.loads(response.content)
        return [str(item["id"]) for item in data.get("data") or ()]

    async def health_check(self) -> bool:
        """True when the API answers a model listing (free: no completion is paid for)."""
        if not self._initialized:
            return False
        assert self._errors is not None
        try:
            async with self._errors.scope(None):
                response = await self._client.get("/v1/models", cast_to=self._raw,
                                                  options={"params": {"limit": 1}})
        except LLMError:
            return False
        return bool(response.is_success)


def _warm_lazy_imports() -> None:
    """Import what httpx2/anyio otherwise import on the first request, inside the event loop (~30 ms)."""
    import importlib

    try:
        importlib.import_module("anyio._backends._asyncio")
    except ImportError:  # another anyio layout: the first request pays for it instead
        pass
