"""The inference handlers of the gateway: model lookup, the key guard, and one method per inference route.

:class:`InferenceHandlers` is a part of :class:`~spoon_llm.server.app.GatewayApp` (a mixin): the app reads the
request and writes the answer; a handler turns the decoded body into a manager call under the key guard and
returns the JSON body to send (or streams the answer itself).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ..types import LLMResponse
from . import _anthropic_api as anthropic_api
from . import _openai_api as openai_api
from ._context import Call, ModelEntry
from ._errors import GatewayError
from ._stream import StreamRenderer, relay

if TYPE_CHECKING:
    from ..config.manager import ConfigurationManager
    from ..manager import LLMManager
    from ._context import Scope

__all__ = ["InferenceHandlers"]


class InferenceHandlers:
    """Model lookup, the key guard and the inference routes' handlers.

    Each handler returns the JSON body to send, or ``None`` when it answered itself (a stream).
    """

    # Set by GatewayApp.
    config: ConfigurationManager
    manager: LLMManager | None
    guard: Any
    models: dict[str, ModelEntry]
    _cache_on: bool
    _prices: Any

    def _cors_headers(self, scope: Scope | None) -> list[tuple[bytes, bytes]]:
        raise NotImplementedError  # GatewayApp's

    # -- model lookup and the key guard -------------------------------------------------------------------------

    def _entry(self, request: Call, name: str) -> ModelEntry:
        entry = self.models.get(name)
        if entry is None:
            provider, _, model = name.partition("/")
            if model and provider in self.config.config.providers:
                section = self.config.config.providers[provider]
                entry = ModelEntry(name, name, section.provider_type, provider, listed=False, price_model=model)
        if entry is None:
            raise GatewayError(404, f"the model {name!r} does not exist or is not served here; GET /v1/models "
                                    "lists the models this key may use", code="model_not_found", param="model")
        if not request.principal.may_use(name):
            raise GatewayError(403, f"this key may not use the model {name!r}", code="model_not_allowed",
                               param="model")
        request.model = name
        return entry

    async def _admit(self, request: Call, entry: ModelEntry, kwargs: Mapping[str, Any]) -> Any:
        """The key guard's admission (``None`` without virtual keys), reserving the request's worst case."""
        guard = self.guard
        if guard is None:
            return None
        record = request.principal.key
        if record is None:
            return None  # the master key: no limits, and _entry has checked the model
        if record.budget_limit is None and record.tpm is None:
            return await guard.admit(request.principal, request.model, request_id=request.request_id)
        # Upper bounds: every 4 bytes of the body a token, and the most output the call allows.
        input_tokens = request.body_size // 4
        max_tokens = kwargs.get("max_tokens")
        output_tokens = max_tokens if type(max_tokens) is int else self.config.config.budget.default_max_tokens
        estimate = None
        if record.budget_limit is not None:
            estimate = self._prices_book().worst_case(input_tokens, output_tokens, entry.price_model,
                                               provider_type=entry.family)
        return await guard.admit(request.principal, request.model, estimate_usd=estimate,
                                 input_tokens=input_tokens, output_tokens=output_tokens,
                                 request_id=request.request_id)

    def _prices_book(self) -> Any:
        if self._prices is None:
            from ..pricing.book import PriceBook

            self._prices = PriceBook.from_config(self.config.config)
        return self._prices

    def _estimate_cost(self, entry: ModelEntry, input_tokens: int, output_tokens: int) -> float:
        from ..types import TokenUsage

        cost = self._prices_book().cost(TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens),
                                        entry.price_model, provider_type=entry.family)
        return 0.0 if cost.unpriced else float(cost.total_cost)

    def _call_kwargs(self, request: Call, kwargs: dict[str, Any]) -> dict[str, Any]:
        tags = request.principal.tags
        if tags:
            kwargs["tags"] = dict(tags)
        return kwargs

    def _trace(self, request: Call, response: Any) -> None:
        """Note what answered (for the log and metrics) and add the trace headers."""
        provider = request.provider = response.provider
        attempts = response.attempts
        if len(attempts) == 1 and attempts[0].error_type is None:  # the common case, without a generator
            trace = (attempts[0].deployment or provider) + ":ok"
        else:
            trace = ",".join(f"{a.deployment or a.provider}:{_outcome(a)}" for a in attempts)
        request.attempts = trace
        headers = request.extra_headers
        headers += ((b"x-request-id", request.request_id.encode()), (b"x-spoon-provider", provider.encode()),
                    (b"x-spoon-model", response.model.encode()), (b"x-spoon-attempts", trace.encode()))
        if request.family == "anthropic":  # the header the anthropic SDK reads its request ids from
            headers.append((b"request-id", request.request_id.encode()))
        cost = response.cost
        if cost is not None and not cost.unpriced:
            request.cost = cost.total_cost
            headers.append((b"x-spoon-cost-usd", b"%.8f" % cost.total_cost))
        usage = response.usage
        if usage is not None:
            request.tokens_in = usage.input_tokens
            request.tokens_out = usage.output_tokens
        if self._cache_on:
            headers.append((b"x-spoon-cache", b"hit" if response.cache_hit else b"miss"))

    def _guarded(self, request: Call, entry: ModelEntry, kwargs: Mapping[str, Any],
                 call: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        """``call()`` under the key guard's admission, released with what the answer cost on every exit path."""
        if self.guard is None or request.principal.key is None:
            # Nothing to admit (no virtual keys, or the master key): the call itself, without a coroutine around
            # it that every wake-up of the request would pass through.
            return call()
        return self._admitted(request, entry, kwargs, call)

    async def _admitted(self, request: Call, entry: ModelEntry, kwargs: Mapping[str, Any],
                        call: Callable[[], Awaitable[Any]]) -> Any:
        admission = await self._admit(request, entry, kwargs)
        if admission is None:
            return await call()
        cost, tokens = 0.0, 0
        try:
            response = await call()
            cost = response.cost.total_cost if getattr(response, "cost", None) is not None else 0.0
            usage = getattr(response, "usage", None)
            tokens = usage.total_tokens if usage is not None else 0
            return response
        finally:
            await admission.release(cost, tokens)

    # -- handlers ---------------------------------------------------------------------------------------------

    async def _chat(self, request: Call, body: Any) -> bytes | None:
        call = openai_api.parse_chat(body)
        entry = self._entry(request, call.model)
        openai_api.refuse_untranslatable(call.kwargs, entry.family)
        kwargs = self._call_kwargs(request, call.kwargs)
        manager = self.manager
        assert manager is not None
        if call.stream:
            renderer = openai_api.OpenAIStream(request.request_id, int(time.time()), call.model, call.include_usage)
            await self._stream(request, entry, call.messages, kwargs, renderer)
            return None
        response: LLMResponse = await self._guarded(request, entry, kwargs, lambda: manager._chat_call(
            call.messages, entry.call_model, request.deadline, kwargs))
        self._trace(request, response)
        return openai_api.render_chat(response, request.request_id, int(time.time()), call.model)

    async def _completion(self, request: Call, body: Any) -> bytes | None:
        call = openai_api.parse_completion(body)
        entry = self._entry(request, call.model)
        openai_api.refuse_untranslatable(call.kwargs, entry.family)
        manager = self.manager
        assert manager is not None
        kwargs = self._call_kwargs(request, call.kwargs)
        if call.stream:  # a prompt is a one-message chat, as manager.completion sends it
            renderer = openai_api.CompletionStream(request.request_id, int(time.time()), call.model,
                                                   call.include_usage)
            await self._stream(request, entry, [{"role": "user", "content": call.prompt}], kwargs, renderer)
            return None
        response: LLMResponse = await self._guarded(request, entry, kwargs, lambda: manager.completion(
            call.prompt, model=entry.call_model, deadline=request.deadline, **kwargs))
        self._trace(request, response)
        return openai_api.render_completion(response, request.request_id, int(time.time()), call.model)

    async def _embeddings(self, request: Call, body: Any) -> bytes | None:
        model, inputs, kwargs, as_base64 = openai_api.parse_embeddings(body)
        entry = self._entry(request, model)
        manager = self.manager
        assert manager is not None
        kwargs = self._call_kwargs(request, kwargs)
        response = await self._guarded(request, entry, {"max_tokens": 0}, lambda: manager.embed(
            inputs, model=entry.call_model, deadline=request.deadline, **kwargs))
        self._trace(request, response)
        return openai_api.render_embeddings(response, model, as_base64)

    async def _messages(self, request: Call, body: Any) -> bytes | None:
        name = body.get("model") if type(body) is dict else None
        entry = self._entry(request, name) if isinstance(name, str) and name else None
        call = anthropic_api.parse_messages(body, native=entry is not None and entry.family == "anthropic")
        if entry is None:
            entry = self._entry(request, call.model)
        kwargs = self._call_kwargs(request, call.kwargs)
        manager = self.manager
        assert manager is not None
        if call.stream:
            renderer = anthropic_api.AnthropicStream(request.request_id, call.model, request.body_size // 4)
            await self._stream(request, entry, call.messages, kwargs, renderer)
            return None
        response: LLMResponse = await self._guarded(request, entry, kwargs, lambda: manager._chat_call(
            call.messages, entry.call_model, request.deadline, kwargs))
        self._trace(request, response)
        return anthropic_api.render_message(response, request.request_id, call.model)

    async def _count_tokens(self, request: Call, body: Any) -> bytes | None:
        from ..tokens import count_messages

        model, conversation, tools = anthropic_api.parse_count_tokens(body)
        entry = self._entry(request, model)
        target = entry.call_model.partition("/")[2] or entry.name
        try:
            counted = count_messages(conversation, target, tools=tools)
        except (ValueError, TypeError) as exc:
            raise GatewayError(400, f"the messages cannot be counted: {exc}", code="invalid_request") from None
        request.extra_headers.append((b"x-request-id", request.request_id.encode()))
        request.extra_headers.append((b"request-id", request.request_id.encode()))
        request.extra_headers.append((b"x-spoon-token-count", b"exact" if counted.exact else b"estimate"))
        return orjson.dumps({"input_tokens": counted.tokens})

    async def _stream(self, request: Call, entry: ModelEntry, messages: list[Any], kwargs: dict[str, Any],
                      renderer: StreamRenderer) -> None:
        """Answer with server-sent events under the key guard, settled on every exit path."""
        assert self.manager is not None
        admission = await self._admit(request, entry, kwargs)
        rest = b""
        try:
            stream = self.manager.chat_stream(messages, model=entry.call_model, deadline=request.deadline, **kwargs)
            rest = await relay(request, stream, renderer, self._cors_headers(request.scope))
        finally:
            final = request.final
            if final is not None:
                usage = final.usage
                if usage is not None:
                    request.tokens_in, request.tokens_out = usage.input_tokens, usage.output_tokens
                cost = final.metadata.get("cost") if final.metadata else None
                if cost is not None and not getattr(cost, "unpriced", True):
                    request.cost = float(getattr(cost, "total_cost", 0.0))
            if admission is not None and request.delivered and (final is None or (
                    final.usage is None and request.cost == 0.0)):
                # Cut short (client gone, backend failed), or ended without reporting usage: settle to what was
                # delivered, as the backend bills it.
                request.tokens_in, request.tokens_out = request.body_size // 4, max(1, request.delivered // 4)
                request.cost = self._estimate_cost(entry, request.tokens_in, request.tokens_out)
            if admission is not None:
                await admission.release(request.cost, request.tokens_in + request.tokens_out)
        request.finished = True  # from here a disconnect message only means the answer is complete
        await request.send({"type": "http.response.body", "body": rest, "more_body": False})


def _outcome(attempt: Any) -> Any:
    """One attempt in the ``x-spoon-attempts`` header: ok, skipped (lacks a capability), or its status or error."""
    if attempt.skipped:
        return "skipped"
    return "ok" if attempt.error_type is None else attempt.status_code or attempt.error_type
