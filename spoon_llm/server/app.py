"""The gateway's ASGI app: OpenAI- and Anthropic-compatible inference routes over one :class:`LLMManager`.

A raw ASGI callable, not a framework: a route is one dict lookup, the body is read once and decoded by orjson,
and answers are written as prebuilt bytes, because a framework's per-request machinery would cost more CPU than
everything else the gateway does (see ``benchmarks/bench_gateway.py``).

Every inference request goes: admission (in-flight cap, bounded queue) -> authentication -> body (size limit) ->
model lookup (404 for what is not configured) -> the key guard -> the manager (routing, fallback, retries,
budgets, limits, cost) -> the answer in the family's own shape, with the trace headers. A client that disconnects
cancels the manager call (the upstream connection is closed) and is counted as cancelled.

Routes: ``POST /v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/v1/messages``,
``/v1/messages/count_tokens``; ``GET /v1/models``, ``/health`` (liveness, no auth), ``/ready`` (providers'
health), ``/metrics`` (Prometheus, admin key).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..config.manager import ConfigurationManager
from ..errors import LLMError, register_secret
from ..manager import LLMManager
from ..types import LLMResponse, LLMResponseChunk
from . import _anthropic_api as anthropic_api
from . import _openai_api as openai_api
from ._errors import Failure, GatewayError, anthropic_body, classify, openai_body
from ._ops import AccessLog, AdmissionGate, GatewayMetrics
from ._settings import ServerSettings
from .auth import Authenticator, Principal

__all__ = ["GatewayApp", "create_app"]

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]

_JSON = (b"content-type", b"application/json")
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_DEADLINE_HEADER = b"x-spoon-deadline"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model name clients may ask for: what the manager is called with, and the backend family behind it."""

    name: str
    call_model: str
    family: str
    owner: str
    listed: bool = True
    #: The model of the first target (what a budget reservation is priced at).
    price_model: str | None = None


def model_table(config: ConfigurationManager) -> dict[str, ModelEntry]:
    """Every name the gateway serves: aliases, then each provider's configured models (plain and ``provider/m``)."""
    settings = config.config
    table: dict[str, ModelEntry] = {}
    configured = config.list_configured_providers()
    for alias, route in settings.models.items():
        target = route.targets[0] if route.targets else None
        first = target.provider if target is not None else ""
        section = settings.providers.get(first)
        model = (target.model if target is not None else None) or (section.model if section else None)
        table[alias] = ModelEntry(alias, alias, section.provider_type if section else first, "spoon-llm",
                                  price_model=model)
    for name in configured:
        section = settings.providers[name]
        models = [section.model, *section.models, *(k.model for k in section.api_keys), *(section.key_models or ())]
        for model in dict.fromkeys(m for m in models if m):
            qualified = f"{name}/{model}"
            table.setdefault(model, ModelEntry(model, qualified, section.provider_type, name, price_model=model))
            table.setdefault(qualified, ModelEntry(qualified, qualified, section.provider_type, name, listed=False,
                                                   price_model=model))
    return table


@dataclass(slots=True)
class _Request:
    """One inference request as the handlers see it."""

    scope: Scope
    receive: Receive
    send: Send
    route: str
    family: str
    request_id: str
    principal: Principal
    deadline: float | None
    body_size: int = 0
    disconnected: bool = False
    finished: bool = False
    stream_error: int | None = None
    status: int = 200
    model: str = ""
    provider: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class _ClientGone(Exception):
    """The client disconnected while its request body was being read."""


class GatewayApp:
    """The ASGI app. Build it with :func:`create_app`; it starts its manager in the ASGI lifespan.

    ``manager`` and ``authenticator`` may be given ready-made (tests, embedding the gateway in a program);
    otherwise they are built from ``config`` at start-up.
    """

    def __init__(self, config: ConfigurationManager, *, manager: LLMManager | None = None,
                 authenticator: Authenticator | None = None) -> None:
        self.config = config
        self.settings: ServerSettings = config.config.server.resolved()
        register_secret(self.settings.master_key_value)
        if self.settings.secret is not None:
            register_secret(self.settings.secret.get_secret_value())
        self.manager = manager
        self.authenticator = authenticator
        self.guard: Any = None
        self.models = model_table(config)
        self.gate = AdmissionGate(self.settings.max_inflight, self.settings.max_queue, self.settings.queue_timeout,
                                  self.settings.retry_after)
        self.metrics = GatewayMetrics(self.gate)
        self.access_log = AccessLog(self.settings.access_log_path) if self.settings.access_log else None
        self._exporter: Any = None
        self._store: Any = None
        self._state: Any = None
        self._prices: Any = None
        self._owned_manager = manager is None
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex() + "-"
        self._max_body = self.settings.max_body_bytes
        self._cors = frozenset(self.settings.cors_origins)
        self._inference: dict[str, tuple[str, str, Callable[[_Request, Any], Awaitable[bytes | None]]]] = {
            "/v1/chat/completions": ("chat", "openai", self._chat),
            "/v1/completions": ("completions", "openai", self._completion),
            "/v1/embeddings": ("embeddings", "openai", self._embeddings),
            "/v1/messages": ("messages", "anthropic", self._messages),
            "/v1/messages/count_tokens": ("count_tokens", "anthropic", self._count_tokens),
        }

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Build the manager, the authenticator and the metrics; start the access-log writer."""
        if self.manager is None:
            self.manager = LLMManager(self.config)
        if self.authenticator is None:
            self.authenticator = self._build_authenticator()
        self.guard = self._build_guard()
        if self.settings.metrics:
            try:
                from ..monitoring.prometheus import PrometheusExporter
            except ImportError:
                self._exporter = None  # the gateway's own series are served without prometheus-client
            else:
                self._exporter = PrometheusExporter()
                self._exporter.attach(self.manager)
        if self.access_log is not None:
            self.access_log.start()

    async def shutdown(self) -> None:
        """Flush the access log, close the manager's clients and the key store (after uvicorn drained requests)."""
        if self.access_log is not None:
            await self.access_log.stop()
        if self.manager is not None and self._owned_manager:
            await self.manager.cleanup()
        if self._store is not None:
            await self._store.close()
        if self._state is not None:
            await self._state.close()

    def _build_authenticator(self) -> Authenticator:
        from .keys import open_key_store, server_secret

        master = self.settings.master_key_value
        secret_setting = self.settings.secret.get_secret_value() if self.settings.secret is not None else None
        if secret_setting is None and master is None:
            return Authenticator(master_key=None, store=None, secret=None)
        self._store = open_key_store(self.config.config)
        return Authenticator(master_key=master, store=self._store, secret=server_secret(secret_setting, master),
                             fail_mode=self.config.config.state.fail_mode)

    def _build_guard(self) -> Any:
        """The per-key limits, over the configured state store (shared by every replica when it is Redis)."""
        if self._store is None:
            return None  # no virtual keys: the master key (or nobody) is all there is to admit
        from ..state import open_store
        from .guard import KeyGuard

        state = self.config.config.state
        self._state = open_store(state.backend, config=state)
        return KeyGuard(self._state, fail_mode=state.fail_mode)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # reported to uvicorn, which refuses to start
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                try:
                    await self.shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    # -- dispatch -----------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(receive, send)
            return
        path = scope["path"]
        method = scope["method"]
        inference = self._inference.get(path)
        if self._cors and method == "OPTIONS":
            await self._preflight(scope, send)
        elif inference is not None:
            if method != "POST":
                await self._fail(send, inference[1], GatewayError(405, f"{path} takes POST"), scope)
            else:
                await self._serve(scope, receive, send, *inference)
        elif path == "/health":
            await self._respond(send, 200, b'{"status":"ok"}', scope=scope)
        elif path == "/v1/models" and method == "GET":
            await self._models(scope, send)
        elif path == "/ready" and method == "GET":
            await self._ready(scope, send)
        elif path == "/metrics" and method == "GET":
            await self._metrics(scope, send)
        else:
            family = "anthropic" if path.startswith("/v1/messages") else "openai"
            await self._fail(send, family, GatewayError(404, f"no route {method} {path}", code="not_found"), scope)

    # -- writing answers ----------------------------------------------------------------------------------------

    def _cors_headers(self, scope: Scope | None) -> list[tuple[bytes, bytes]]:
        if not self._cors or scope is None:
            return []
        origin = next((v for k, v in scope["headers"] if k == b"origin"), None)
        if origin is None:
            return []
        if "*" in self._cors:
            return [(b"access-control-allow-origin", b"*")]
        if origin.decode("latin-1") in self._cors:
            return [(b"access-control-allow-origin", origin), (b"vary", b"origin")]
        return []

    async def _preflight(self, scope: Scope, send: Send) -> None:
        headers = self._cors_headers(scope)
        if headers:
            headers += [(b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                        (b"access-control-allow-headers", b"authorization, content-type, x-api-key, "
                         b"anthropic-version, anthropic-beta, x-spoon-deadline"),
                        (b"access-control-max-age", b"600")]
        await send({"type": "http.response.start", "status": 204 if headers else 403, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _respond(self, send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None,
                       content_type: tuple[bytes, bytes] = _JSON, scope: Scope | None = None) -> None:
        out = [content_type, (b"content-length", str(len(body)).encode())]
        if headers:
            out += headers
        if self._cors:
            out += self._cors_headers(scope)
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})

    async def _fail(self, send: Send, family: str, exc: LLMError, scope: Scope | None = None,
                    request_id: str | None = None) -> int:
        failure = classify(exc)
        body = anthropic_body(failure) if family == "anthropic" else openai_body(failure)
        headers = failure.headers()
        if request_id is not None:
            headers.append((b"x-request-id", request_id.encode()))
        await self._respond(send, failure.status, body, headers, scope=scope)
        return failure.status

    # -- the inference path -------------------------------------------------------------------------------------

    async def _read_body(self, request: _Request) -> bytes:
        limit = self._max_body
        receive = request.receive
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise GatewayError(413, f"the request body exceeds {limit} bytes", code="request_too_large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        request.body_size = size
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _headers_of(self, scope: Scope) -> tuple[int | None, float | None]:
        length: int | None = None
        deadline: float | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise GatewayError(400, "invalid Content-Length") from None
            elif name == _DEADLINE_HEADER:
                try:
                    deadline = float(value)
                except ValueError:
                    raise GatewayError(400, "x-spoon-deadline must be a number of seconds") from None
                if not deadline > 0:
                    raise GatewayError(400, "x-spoon-deadline must be a positive number of seconds")
        return length, deadline

    async def _serve(self, scope: Scope, receive: Receive, send: Send, route: str, family: str,
                     handler: Callable[[_Request, Any], Awaitable[bytes | None]]) -> None:
        started = time.perf_counter()
        request_id = self._id_prefix + format(next(self._ids), "x")
        client = scope.get("client")
        host = client[0] if client else None
        request: _Request | None = None
        alias = "-"
        status = 500
        outcome = "ok"
        gate = self.gate
        try:
            await gate.acquire()
        except GatewayError as exc:
            status = await self._fail(send, family, exc, scope, request_id)
            self._log(request_id, scope, route, status, alias, None, started, "rejected", host)
            return
        try:
            length, deadline = self._headers_of(scope)
            if length is not None and length > self._max_body:
                raise GatewayError(413, f"the request body exceeds {self._max_body} bytes", code="request_too_large")
            assert self.authenticator is not None, "the gateway serves requests only after its lifespan start-up"
            principal = await self.authenticator.authenticate(scope["headers"], host)
            alias = principal.alias
            request = _Request(scope, receive, send, route, family, request_id, principal, deadline)
            raw = await self._read_body(request)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise GatewayError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
            answer = await self._watched(request, handler(request, body))
            if answer is not None:
                await self._respond(send, request.status, answer, request.extra_headers, scope=scope)
            status = request.status
        except GatewayError as exc:
            status = await self._fail(send, family, exc, scope, request_id)
            outcome = "refused"
        except LLMError as exc:
            if request is not None and request.disconnected:
                outcome, status = "cancelled", 499
            else:
                status = await self._fail(send, family, exc, scope, request_id)
                outcome = "error"
        except _ClientGone:
            outcome, status = "cancelled", 499
        except asyncio.CancelledError:
            if request is None or not request.disconnected:
                raise  # the server is stopping: not ours to swallow
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()
            outcome, status = "cancelled", 499
        finally:
            gate.release()
        if outcome == "cancelled":
            self.metrics.record_cancelled(route, alias)
        self._log(request_id, scope, route, status, alias, request, started, outcome, host)

    async def _watched(self, request: _Request, work: Awaitable[bytes | None]) -> bytes | None:
        """Run ``work``, cancelling it when the client disconnects (which closes the upstream call)."""
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.get_running_loop().create_task(self._watch(request, task))
        try:
            return await work
        finally:
            watcher.cancel()

    @staticmethod
    async def _watch(request: _Request, task: asyncio.Task[Any]) -> None:
        # The body has been read: the next message is the disconnect (uvicorn also sends one after the response
        # is complete, which is why this watcher is cancelled before the last byte goes out).
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                if not request.finished:
                    request.disconnected = True
                    task.cancel()
                return

    def _log(self, request_id: str, scope: Scope, route: str, status: int, alias: str, request: _Request | None,
             started: float, outcome: str, host: str | None) -> None:
        seconds = time.perf_counter() - started
        model = request.model if request is not None else ""
        provider = request.provider if request is not None else ""
        tokens_in = request.tokens_in if request is not None else 0
        tokens_out = request.tokens_out if request is not None else 0
        cost = request.cost if request is not None else 0.0
        self.metrics.record(route, status, alias, model, provider, seconds, cost, tokens_in, tokens_out)
        if self.access_log is not None:
            self.access_log.add(time.time(), request_id, scope["method"], route, status, alias, model or None,
                                provider or None, round(seconds * 1000, 3), tokens_in, tokens_out, cost, outcome,
                                host)

    # -- model lookup and the key guard -------------------------------------------------------------------------

    def _entry(self, request: _Request, name: str) -> ModelEntry:
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

    async def _admit(self, request: _Request, entry: ModelEntry, kwargs: Mapping[str, Any]) -> Any:
        """The key guard's admission (``None`` without virtual keys), reserving the request's worst case."""
        guard = self.guard
        if guard is None:
            return None
        record = request.principal.key
        if record is None or (record.budget_limit is None and record.tpm is None):
            return await guard.admit(request.principal, request.model, request_id=request.request_id)
        # Upper bounds: every 4 bytes of the body a token, and the most output the call allows.
        input_tokens = request.body_size // 4
        max_tokens = kwargs.get("max_tokens")
        output_tokens = max_tokens if type(max_tokens) is int else self.config.config.budget.default_max_tokens
        estimate = None
        if record.budget_limit is not None:
            if self._prices is None:
                from ..pricing.book import PriceBook

                self._prices = PriceBook.from_config(self.config.config)
            estimate = self._prices.worst_case(input_tokens, output_tokens, entry.price_model,
                                               provider_type=entry.family)
        return await guard.admit(request.principal, request.model, estimate_usd=estimate,
                                 input_tokens=input_tokens, output_tokens=output_tokens,
                                 request_id=request.request_id)

    def _call_kwargs(self, request: _Request, kwargs: dict[str, Any]) -> dict[str, Any]:
        tags = request.principal.tags
        if tags:
            kwargs["tags"] = dict(tags)
        return kwargs

    def _trace(self, request: _Request, response: Any) -> None:
        """Note what answered (for the log and metrics) and add the trace headers."""
        request.provider = response.provider
        headers = request.extra_headers
        headers.append((b"x-request-id", request.request_id.encode()))
        headers.append((b"x-spoon-provider", response.provider.encode()))
        headers.append((b"x-spoon-model", (response.model or "").encode()))
        attempts = response.attempts
        if attempts:
            headers.append((b"x-spoon-attempts", ",".join(
                f"{a.deployment or a.provider}:{'ok' if a.error_type is None else (a.status_code or a.error_type)}"
                for a in attempts).encode()))
        cost = response.cost
        if cost is not None and not cost.unpriced:
            request.cost = cost.total_cost
            headers.append((b"x-spoon-cost-usd", f"{cost.total_cost:.8f}".encode()))
        usage = response.usage
        if usage is not None:
            request.tokens_in = usage.input_tokens
            request.tokens_out = getattr(usage, "output_tokens", 0)
            cached = getattr(usage, "cached_input_tokens", 0)
            headers.append((b"x-spoon-cache", b"hit" if cached else b"miss"))

    async def _guarded(self, request: _Request, entry: ModelEntry, kwargs: Mapping[str, Any],
                       call: Callable[[], Awaitable[Any]]) -> Any:
        """``call()`` under the key guard's admission, released with what the answer cost on every exit path."""
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

    # -- handlers (each returns the JSON body to send, or None when it answered itself) -------------------------

    async def _chat(self, request: _Request, body: Any) -> bytes | None:
        call = openai_api.parse_chat(body)
        entry = self._entry(request, call.model)
        kwargs = self._call_kwargs(request, call.kwargs)
        manager = self.manager
        assert manager is not None
        if call.stream:
            renderer = openai_api.OpenAIStream(request.request_id, int(time.time()), call.model, call.include_usage)
            await self._stream(request, entry, call.messages, kwargs, renderer)
            return None
        response: LLMResponse = await self._guarded(request, entry, kwargs, lambda: manager.chat(
            call.messages, model=entry.call_model, deadline=request.deadline, **kwargs))
        self._trace(request, response)
        return openai_api.render_chat(response, request.request_id, int(time.time()), call.model)

    async def _completion(self, request: _Request, body: Any) -> bytes | None:
        model, prompt, kwargs = openai_api.parse_completion(body)
        entry = self._entry(request, model)
        manager = self.manager
        assert manager is not None
        kwargs = self._call_kwargs(request, kwargs)
        response: LLMResponse = await self._guarded(request, entry, kwargs, lambda: manager.completion(
            prompt, model=entry.call_model, deadline=request.deadline, **kwargs))
        self._trace(request, response)
        return openai_api.render_completion(response, request.request_id, int(time.time()), model)

    async def _embeddings(self, request: _Request, body: Any) -> bytes | None:
        model, inputs, kwargs, as_base64 = openai_api.parse_embeddings(body)
        entry = self._entry(request, model)
        manager = self.manager
        assert manager is not None
        kwargs = self._call_kwargs(request, kwargs)
        response = await self._guarded(request, entry, {"max_tokens": 0}, lambda: manager.embed(
            inputs, model=entry.call_model, deadline=request.deadline, **kwargs))
        self._trace(request, response)
        return openai_api.render_embeddings(response, model, as_base64)

    async def _messages(self, request: _Request, body: Any) -> bytes | None:
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
        response: LLMResponse = await self._guarded(request, entry, kwargs, lambda: manager.chat(
            call.messages, model=entry.call_model, deadline=request.deadline, **kwargs))
        self._trace(request, response)
        return anthropic_api.render_message(response, request.request_id, call.model)

    async def _count_tokens(self, request: _Request, body: Any) -> bytes | None:
        from ..tokens import count_messages

        model, conversation, tools = anthropic_api.parse_count_tokens(body)
        entry = self._entry(request, model)
        target = entry.call_model.partition("/")[2] or entry.name
        try:
            counted = count_messages(conversation, target, tools=tools)
        except (ValueError, TypeError) as exc:
            raise GatewayError(400, f"the messages cannot be counted: {exc}", code="invalid_request") from None
        request.extra_headers.append((b"x-request-id", request.request_id.encode()))
        request.extra_headers.append((b"x-spoon-token-count", b"exact" if counted.exact else b"estimate"))
        return orjson.dumps({"input_tokens": counted.tokens})

    async def _stream(self, request: _Request, entry: ModelEntry, messages: list[Any], kwargs: dict[str, Any],
                      renderer: openai_api.OpenAIStream | anthropic_api.AnthropicStream) -> None:
        """Answer with server-sent events; failures before the first chunk are ordinary error answers."""
        assert self.manager is not None
        admission = await self._admit(request, entry, kwargs)
        stream = self.manager.chat_stream(messages, model=entry.call_model, deadline=request.deadline, **kwargs)
        iterator = stream.__aiter__()
        send = request.send
        final: LLMResponseChunk | None = None
        try:
            first = await iterator.__anext__()
            request.provider = first.provider
            headers = [*_SSE, (b"x-request-id", request.request_id.encode()),
                       (b"x-spoon-provider", first.provider.encode()), (b"x-spoon-model", first.model.encode()),
                       *self._cors_headers(request.scope)]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            out = renderer.start()
            piece = renderer.chunk(first)
            if first.kind == "final":
                final = first
            await send({"type": "http.response.body", "body": out + piece if piece else out, "more_body": True})
            if final is None:
                try:
                    async for chunk in iterator:
                        piece = renderer.chunk(chunk)
                        if chunk.kind == "final":
                            final = chunk
                        if piece:
                            await send({"type": "http.response.body", "body": piece, "more_body": True})
                except LLMError as exc:
                    if request.disconnected:
                        raise
                    # Headers are out: the failure travels as the family's error event, then the stream ends.
                    failure: Failure = classify(exc)
                    error = anthropic_body(failure) if request.family == "anthropic" else openai_body(failure)
                    await send({"type": "http.response.body", "body": renderer.error(error), "more_body": True})
                    request.stream_error = failure.status
                else:
                    if final is None:  # a stream that ended without its closing chunk
                        await send({"type": "http.response.body", "more_body": True, "body": renderer.final(
                            LLMResponseChunk(kind="final", provider=first.provider, model=first.model))})
        except StopAsyncIteration:
            raise GatewayError(502, "the backend ended the stream without an answer", code="upstream_error") from None
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()
            if final is not None:
                usage = final.usage
                if usage is not None:
                    request.tokens_in, request.tokens_out = usage.input_tokens, usage.output_tokens
                cost = final.metadata.get("cost") if final.metadata else None
                if cost is not None and not getattr(cost, "unpriced", True):
                    request.cost = float(getattr(cost, "total_cost", 0.0))
            if admission is not None:
                await admission.release(request.cost, request.tokens_in + request.tokens_out)
        request.finished = True  # from here a disconnect message only means the answer is complete
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- operational routes -------------------------------------------------------------------------------------

    async def _admin(self, scope: Scope) -> Principal:
        assert self.authenticator is not None
        client = scope.get("client")
        principal = await self.authenticator.authenticate(scope["headers"], client[0] if client else None)
        if principal.role != "admin":
            raise GatewayError(403, "this route needs an admin key", code="admin_only")
        return principal

    async def _models(self, scope: Scope, send: Send) -> None:
        try:
            assert self.authenticator is not None
            client = scope.get("client")
            principal = await self.authenticator.authenticate(scope["headers"], client[0] if client else None)
        except LLMError as exc:
            await self._fail(send, "openai", exc, scope)
            return
        names = [(e.name, e.owner) for e in self.models.values() if e.listed and principal.may_use(e.name)]
        await self._respond(send, 200, openai_api.render_models(names, int(self.metrics.started)), scope=scope)

    async def _ready(self, scope: Scope, send: Send) -> None:
        assert self.manager is not None
        deployments = self.manager.get_provider_status()
        ready = any(d["available"] for d in deployments.values())
        body = orjson.dumps({"status": "ready" if ready else "unavailable", "deployments": {
            name: {"available": d["available"], "healthy": d["healthy"], "circuit": d["circuit"].get("state")}
            for name, d in deployments.items()}}, default=str)
        await self._respond(send, 200 if ready else 503, body, scope=scope)

    async def _metrics(self, scope: Scope, send: Send) -> None:
        try:
            await self._admin(scope)
        except LLMError as exc:
            await self._fail(send, "openai", exc, scope)
            return
        body = self.metrics.render()
        if self._exporter is not None:
            body += self._exporter.generate_latest()
        await self._respond(send, 200, body, content_type=(b"content-type", b"text/plain; version=0.0.4"),
                            scope=scope)


def create_app(config: ConfigurationManager | str | os.PathLike[str] | Mapping[str, Any] | None = None, *,
               manager: LLMManager | None = None, authenticator: Authenticator | None = None) -> GatewayApp:
    """The gateway app for a configuration (a manager, a file path, a dict, or ``None`` for the usual lookup).

    Configuration errors are raised here, before a server binds.
    """
    if not isinstance(config, ConfigurationManager):
        config = ConfigurationManager(config)
    return GatewayApp(config, manager=manager, authenticator=authenticator)


def create_app_from_env() -> GatewayApp:
    """The app for uvicorn's worker processes (``factory=True``): configuration from ``SPOON_LLM_CONFIG``."""
    return create_app(None)
