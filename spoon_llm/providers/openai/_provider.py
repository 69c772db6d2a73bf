"""``OpenAICompatibleProvider``: any OpenAI-compatible chat API through the official ``openai`` SDK.

The shared base of the ``openai``, ``openrouter``, ``deepseek``, ``vllm`` and ``ollama`` providers, and usable on
its own for a purely configured endpoint::

    [providers.my-server]
    type = "openai_compatible"
    base_url = "http://10.0.0.5:8000/v1"
    model = "qwen2.5-7b-instruct"
    api_key = "${MY_SERVER_KEY}"          # optional

Two transports (set up by :mod:`._client` on the shared ``DualTransportProvider`` skeleton) share one wire
mapping (:mod:`._convert`, :mod:`._decode`, :mod:`._stream`, :mod:`._errors`):

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
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from ...errors import DECODE_FAULTS, ConfigurationError, ResponseParsingError, excerpt, malformed
from ...interface import ProviderMetadata, StreamCallback
from ...streaming import collect_stream
from ...types import EmbeddingResponse, LLMResponse, LLMResponseChunk, TokenUsage
from .._builtin import builtin_capabilities
from ._client import OpenAIClient, StreamCall
from ._convert import build_chat_body, build_completion_body, build_embedding_body, messages_to_wire
from ._decode import parse_chat_completion, parse_embeddings, parse_text_completion
from ._dialect import model_rules, supports_legacy_completions
from ._stream import ChatStreamDecoder, CompletionStreamDecoder

__all__ = ["OpenAICompatibleProvider", "builtin_capabilities"]


class OpenAICompatibleProvider(OpenAIClient):
    """Provider for any OpenAI-compatible API (chat, streaming, tools, legacy completions, embeddings).

    Subclasses set ``provider_name``, ``default_base_url``, ``default_model`` (class attributes, or instance
    attributes in ``__init__`` as the older API did), may override :meth:`get_additional_headers` and
    :meth:`get_metadata`, and tune the wire dialect with the class attributes below.

    ``client`` (an object with the SDK's ``post``/``get``/``close``) and ``http_transport`` (an
    ``httpx2.AsyncBaseTransport``, e.g. ``httpx2.MockTransport``) are for tests; either means the SDK transport.
    """

    def _finish(self, response: LLMResponse) -> LLMResponse:
        """Last touch on every complete answer (subclasses add cost, metadata...)."""
        return response

    async def _chat_request(self, messages: Any, kwargs: dict[str, Any], *, stream: bool
                            ) -> tuple[str, dict[str, Any], Any, Any]:
        """The model, JSON body, per-call headers and timeout of one chat call (``kwargs`` is consumed)."""
        if not self._initialized:
            self._ensure_ready()
        # Not through _model_for: one coroutine less per call when the model is known (almost always).
        model = self._known_model(kwargs) or await self._discovered_model()
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
        # _post_json inline: a coroutine less, on every wake-up of the request, on the busiest call.
        transport = self._transport
        assert transport is not None
        start = time.perf_counter()
        content, response_headers = await transport.post("chat/completions", body, model, headers, timeout)
        data, request_id, duration, pacing = self._answer(content, response_headers, model, start)
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

    def _stream(self, messages: Any, **kwargs: Any) -> AsyncGenerator[LLMResponseChunk, None]:
        # The request is built when the caller iterates, inside the one generator that reads the answer.
        return self._stream_sse("chat/completions", lambda: self._chat_request(messages, kwargs, stream=True),
                                ChatStreamDecoder)

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
        try:
            response = parse_text_completion(data, provider=self._label, model=model, request_id=request_id,
                                             duration=duration)
        except DECODE_FAULTS as exc:
            raise malformed("the answer", data, exc, provider=self._label, model=model) from exc
        return self._finish(response)

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
        call = (model, body, headers, timeout)
        async with aclosing(self._stream_sse("completions", lambda: _ready(call), CompletionStreamDecoder)) as chunks:
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
        try:
            response = parse_embeddings(data, provider=self._label, model=model, request_id=request_id)
        except DECODE_FAULTS as exc:  # binascii.Error (bad base64) is a ValueError too
            raise malformed("the embeddings", data, exc, provider=self._label, model=model) from exc
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


async def _ready(call: StreamCall) -> StreamCall:
    """A streamed call built already, as the awaitable ``_stream_sse`` asks for."""
    return call
