"""The gateway's ASGI app: OpenAI- and Anthropic-compatible inference routes over one :class:`LLMManager`.

A raw ASGI callable, not a framework: a route is one dict lookup, the body is read once and decoded by orjson,
and answers are written as prebuilt bytes, because a framework's per-request machinery would cost more CPU than
everything else the gateway does (see ``benchmarks/bench_gateway.py``).

Every inference request goes: admission (in-flight cap, bounded queue) -> authentication -> body (size limit) ->
model lookup (404 for what is not configured) -> the key guard -> the manager (routing, fallback, retries,
budgets, limits, cost) -> the answer in the family's own shape, with the trace headers. A client that disconnects
cancels the manager call (the upstream connection is closed) and is counted as cancelled. This module reads
requests and writes answers; the handlers behind the inference routes are in ``_handlers.py``.

Routes: ``POST /v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/v1/messages``,
``/v1/messages/count_tokens``; ``GET /v1/models``, ``/health`` (liveness, no auth), ``/ready`` (providers'
health), ``/metrics`` (Prometheus, admin key), the admin API under ``/api/admin`` (see
:mod:`spoon_llm.server.admin`) and the dashboard's static files under ``/ui`` (see ``_static.py``).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from ..config.manager import ConfigurationManager
from ..errors import ConfigurationError, LLMError, register_secret
from ..manager import DEFAULT_REQUEST_TIMEOUT, LLMManager
from . import _openai_api as openai_api
from ._context import Call, ClientGone, Receive, Scope, Send, model_table
from ._errors import GatewayError, anthropic_body, classify, openai_body
from ._handlers import InferenceHandlers
from ._ops import AdmissionGate, GatewayMetrics, RequestLog
from ._settings import ServerSettings
from ._static import StaticFiles
from .auth import Authenticator, Principal

__all__ = ["GatewayApp", "create_app"]

logger = logging.getLogger("spoon_llm.server")

_JSON = (b"content-type", b"application/json")
_DEADLINE_HEADER = b"x-spoon-deadline"


class _AttemptMetrics:
    """The library's Prometheus exporter, subscribed to what happens inside requests only.

    Events are recorded after the answer is out: the first one of a loop iteration schedules one pass over all
    of them (``call_soon``), which runs once the request's task has written its response, and before anything
    that saw that response could ask for the metrics (``/metrics`` also records what is pending first).
    """

    event_kinds = frozenset({"attempt_end", "first_token", "retry", "fallback", "circuit_change", "budget_alert"})

    def __init__(self, exporter: Any) -> None:
        self._record = exporter.on_event
        self._pending: list[Any] = []

    def on_event(self, event: Any) -> None:
        pending = self._pending
        pending.append(event)
        if len(pending) == 1:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # outside the event loop: nothing to answer first
                self.drain()
            else:
                loop.call_soon(self.drain)

    def drain(self) -> None:
        """Record every pending event (an observer's failure is logged, as the event bus does)."""
        pending, self._pending = self._pending, []
        record = self._record
        for event in pending:
            try:
                record(event)
            except Exception:
                logger.exception("the metrics exporter failed on %s", event.kind)


class GatewayApp(InferenceHandlers):
    """The ASGI app. Build it with :func:`create_app`; it starts its manager in the ASGI lifespan.

    ``manager`` and ``authenticator`` may be given ready-made (tests, embedding the gateway in a program);
    otherwise they are built from ``config`` at start-up.
    """

    def __init__(self, config: ConfigurationManager, *, manager: LLMManager | None = None,
                 authenticator: Authenticator | None = None, tracer_provider: Any = None) -> None:
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
        self.requests = RequestLog(self.metrics, access_log=self.settings.access_log,
                                   path=self.settings.access_log_path)
        self._exporter: Any = None
        self._cache_on = False  # a response cache in the manager's chain (set at start-up)
        self._observer: _AttemptMetrics | None = None
        self._store: Any = None
        self._prices: Any = None
        self._owned_manager = manager is None
        self._tracer_provider = tracer_provider
        self._tracer: Any = None  # the gateway's spans ([server] otel)
        self._span_observer: Any = None  # the library's spans under them
        if self.settings.otel:
            _require_otel()
        #: The admin API (``/api/admin``) once started; see :mod:`spoon_llm.server.admin`.
        self.admin: Any = None
        #: Set by ``spoon-llm serve`` (which owns the process): tune the garbage collector after start-up.
        self.tune_gc = False
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex() + "-"
        self._max_body = self.settings.max_body_bytes
        # A client's x-spoon-deadline may only tighten the configured request_timeout, never lift it.
        configured = config.config.request_timeout
        self._deadline_cap = configured if configured is not None else DEFAULT_REQUEST_TIMEOUT
        self._cors = frozenset(self.settings.cors_origins)
        self.ui = StaticFiles()
        self._inference: dict[str, tuple[str, str, Callable[[Call, Any], Awaitable[bytes | None]]]] = {
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
            # The gateway reports its requests itself (/metrics, the admin API). The library's process-wide
            # collector has no reader here, so it is fed only when the configuration asks for it by name
            # (monitoring = true): building its request_end events cost ~2% of the gateway's CPU per request.
            asked = "monitoring" in self.config.config.model_fields_set
            self.manager = LLMManager(self.config, monitoring=None if asked else False)
        if self.authenticator is None:
            self.authenticator = self._build_authenticator()
        self.guard = self._build_guard()
        # x-spoon-cache reports the response cache: sent only when one is configured.
        self._cache_on = any(m.name == "cache" for m in self.manager._chain.middleware)
        if self.settings.metrics:
            try:
                from ..monitoring.prometheus import PrometheusExporter
            except ImportError:
                self._exporter = None  # the gateway's own series are served without prometheus-client
            else:
                self._exporter = PrometheusExporter()
                self._exporter.attach(self.manager)
                # Requests are counted by the gateway's own series (route, key alias, model, provider, status);
                # the library's exporter takes only what happens inside a request, so the manager does not build
                # the request-level events for every call.
                self.manager.remove_observer(self._exporter)
                self._observer = _AttemptMetrics(self._exporter)
                self.manager.add_observer(self._observer)
        if self.settings.otel:
            from ..monitoring.otel import OpenTelemetryTracer
            from ._tracing import GatewayTracer

            self._tracer = GatewayTracer(self._tracer_provider)
            self._span_observer = OpenTelemetryTracer(self._tracer_provider)
            self.manager.add_observer(self._span_observer)
        self.requests.start()
        settings = self.settings
        if settings.admin_api and (settings.master_key_value or settings.secret is not None
                                   or settings.jwt is not None):
            from .admin.setup import start_admin

            self.admin = await start_admin(self)
        if self.tune_gc:
            tune_collector()

    async def shutdown(self) -> None:
        """Flush the access log, close the manager's clients and the key store (after uvicorn drained requests)."""
        admin, self.admin = self.admin, None
        if admin is not None:
            await admin.stop()
        await self.requests.stop()
        if self.manager is not None and self._observer is not None:
            self.manager.remove_observer(self._observer)
            self._observer.drain()
            self._observer = None
        observer, self._span_observer = self._span_observer, None
        if observer is not None and self.manager is not None:
            self.manager.remove_observer(observer)
            observer.close()
        if self.manager is not None and self._owned_manager:
            await self.manager.cleanup()
        guard, self.guard = self.guard, None
        if guard is not None:
            await guard.close()
        if self._store is not None:
            await self._store.close()

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
        """The per-key limits over ``[state]``: counters in ``backend``, spend in ``ledger`` (see ``build_guard``)."""
        from .guard import build_guard

        return build_guard(self.config.config, self._store)

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

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every request but an inference POST (those :meth:`__call__` serves itself)."""
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
        elif inference is not None:  # an inference route asked with another method than POST
            await self._fail(send, inference[1], GatewayError(405, f"{path} takes POST"), scope)
        elif path == "/health":
            await self._respond(send, 200, b'{"status":"ok"}', scope=scope)
        elif path.startswith("/api/admin"):
            if self.admin is not None:
                await self.admin.asgi(scope, receive, send)
            else:
                await self._fail(send, "openai", GatewayError(
                    404, "the admin API is off: it needs [server] admin_api = true and a master key, a server "
                         "secret or [server.jwt] to sign in with", code="not_found"), scope)
        elif self.ui.handles(path):
            if self.admin is not None:
                await self.ui(scope, receive, send)
            else:  # the dashboard is a client of the admin API: without it there is nothing it could show
                await self._fail(send, "openai", GatewayError(
                    404, "the dashboard (/ui) needs the admin API: set [server] admin_api = true and a master key, "
                         "a server secret or [server.jwt] to sign in with", code="not_found"), scope)
        elif path == "/v1/models" and method == "GET":
            await self._models(scope, send)
        elif path == "/ready" and method == "GET":
            await self._ready(scope, send)
        elif path == "/metrics" and method == "GET" and self.settings.metrics:
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
            if family == "anthropic":  # the header the anthropic SDK reads its request ids from
                headers.append((b"request-id", request_id.encode()))
        await self._respond(send, failure.status, body, headers, scope=scope)
        return failure.status

    # -- the inference path -------------------------------------------------------------------------------------

    async def _read_body(self, request: Call) -> bytes:
        limit = self._max_body
        receive = request.receive
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
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
                if not (deadline > 0 and math.isfinite(deadline)):
                    raise GatewayError(400, "x-spoon-deadline must be a positive, finite number of seconds")
                deadline = min(deadline, self._deadline_cap)
        return length, deadline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: an inference POST is served right here, everything else by :meth:`_dispatch`.

        The inference path is written in the entry point itself rather than in a method it awaits: each coroutine
        between the server and the upstream call is passed through again on every wake-up of the request.
        """
        inference = self._inference.get(scope["path"]) if scope["type"] == "http" else None
        if inference is None or scope["method"] != "POST":
            await self._dispatch(scope, receive, send)
            return
        route, family, handler = inference
        started = time.perf_counter()
        request_id = self._id_prefix + format(next(self._ids), "x")
        client = scope.get("client")
        host = client[0] if client else None
        request: Call | None = None
        alias = "-"
        status = 500
        outcome = "ok"
        gate = self.gate
        try:
            await gate.acquire()
        except GatewayError as exc:
            status = await self._fail(send, family, exc, scope, request_id)
            self._log(request_id, scope, route, status, alias, None, started, "rejected", host)
            if self._tracer is not None:
                self._tracer.end(self._tracer.start(scope, route, request_id), status, "rejected", alias, None)
            return
        span = self._tracer.start(scope, route, request_id) if self._tracer is not None else None
        try:
            length, deadline = self._headers_of(scope)
            if length is not None and length > self._max_body:
                raise GatewayError(413, f"the request body exceeds {self._max_body} bytes", code="request_too_large")
            assert self.authenticator is not None, "the gateway serves requests only after its lifespan start-up"
            principal = await self.authenticator.authenticate(scope["headers"], host)
            alias = principal.alias
            request = Call(scope, receive, send, route, family, request_id, principal, deadline)
            raw = await self._read_body(request)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise GatewayError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
            # Watch for the client leaving: a disconnect cancels this task (and with it the upstream call). The
            # watcher starts on the loop's next turn, once this task waits (its upstream request is out by then):
            # a disconnect meanwhile is still the next message it receives.
            # One get_running_loop: on Python 3.11 each call (current_task() without a loop makes one too) is a
            # getpid system call.
            loop = asyncio.get_running_loop()
            loop.call_soon(self._start_watch, request, asyncio.current_task(loop), loop)
            try:
                answer = await handler(request, body)
            finally:
                # The watcher is not cancelled (that costs more than letting it run out): the end of the response
                # wakes it, and it leaves without touching the request.
                request.finished = True
            if answer is not None:
                await self._respond(send, request.status, answer, request.extra_headers, scope=scope)
            status = request.status
            if request.stream_error is not None:
                outcome = f"stream_error_{request.stream_error}"
        except GatewayError as exc:
            status = await self._fail(send, family, exc, scope, request_id)
            outcome = "refused"
        except LLMError as exc:
            if request is not None and request.disconnected:
                outcome, status = "cancelled", 499
            else:
                status = await self._fail(send, family, exc, scope, request_id)
                outcome = "error"
        except ClientGone:
            outcome, status = "cancelled", 499
        except asyncio.CancelledError:
            if request is None or not request.disconnected:
                raise  # the server is stopping: not ours to swallow
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()
            outcome, status = "cancelled", 499
        except Exception:
            # A bug, not a refusal: the operator gets the traceback in the server log, the client a 500 in its
            # family's shape naming the request id, never the traceback.
            logger.exception("request %s on %s failed", request_id, route)
            outcome, status = "internal_error", 500
            if request is None or not request.streaming:
                status = await self._fail(send, family, GatewayError(
                    500, f"internal error in the gateway (request {request_id}); the server log has the details",
                    code="internal_error"), scope, request_id)
        finally:
            gate.release()
            if span is not None:
                self._tracer.end(span, status, outcome, alias, request)
        self._log(request_id, scope, route, status, alias, request, started, outcome, host)

    def _start_watch(self, request: Call, task: asyncio.Task[Any] | None, loop: asyncio.AbstractEventLoop) -> None:
        if not request.finished and task is not None:  # else answered without waiting: nothing left to cancel
            request.watcher = loop.create_task(self._watch(request, task))

    @staticmethod
    async def _watch(request: Call, task: asyncio.Task[Any]) -> None:
        # The body has been read: the next message is the disconnect, or uvicorn's own after the response ended.
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                if not request.finished:
                    request.disconnected = True
                    task.cancel()
                return

    def _log(self, request_id: str, scope: Scope, route: str, status: int, alias: str, request: Call | None,
             started: float, outcome: str, host: str | None) -> None:
        seconds = time.perf_counter() - started
        if request is None:
            self.requests.add(time.time(), request_id, scope["method"], route, status, alias, None, None,
                              round(seconds * 1000, 3), 0, 0, 0.0, outcome, host, "")
        else:
            self.requests.add(time.time(), request_id, scope["method"], route, status, alias, request.model or None,
                              request.provider or None, round(seconds * 1000, 3), request.tokens_in,
                              request.tokens_out, request.cost, outcome, host, request.attempts)

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
        self.requests.flush()  # count what finished since the last flush
        body = self.metrics.render()
        if self._observer is not None:
            self._observer.drain()
        if self._exporter is not None:
            body += self._exporter.generate_latest()
        await self._respond(send, 200, body, content_type=(b"content-type", b"text/plain; version=0.0.4"),
                            scope=scope)


#: gen0 threshold once the gateway serves (Python's default: 700). Requests make almost no reference cycles, so
#: the collector mostly walks live objects of requests in flight; fewer, larger gen0 passes do less of that.
GC_GEN0_THRESHOLD = 20_000


def tune_collector() -> None:
    """Freeze what start-up built and collect the young generation less often (the gateway's own process only).

    The modules, configuration, clients and pools live as long as the process: frozen, the collector no longer
    walks them. Under load the collector took ~20% of the gateway's CPU with Python's defaults (full passes over
    ~110k start-up objects, ~60 ms each, and ~300 gen0 passes a second); with this, CPU per request at c=64 fell
    by ~20% (``benchmarks/bench_gateway.py`` configuration, A/B against the defaults). Not done when the app is
    embedded in another program (``create_app``): the collector is the program's to tune.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def _require_otel() -> None:
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        raise ConfigurationError('[server] otel = true needs OpenTelemetry: pip install "spoon-llm[otel]", or set '
                                 "otel = false", key="server.otel") from None


def create_app(config: ConfigurationManager | str | os.PathLike[str] | Mapping[str, Any] | None = None, *,
               manager: LLMManager | None = None, authenticator: Authenticator | None = None,
               tracer_provider: Any = None) -> GatewayApp:
    """The gateway app for a configuration (a manager, a file path, a dict, or ``None`` for the usual lookup).

    ``tracer_provider``: where the spans of ``[server] otel = true`` go (default: the global provider).
    Configuration errors are raised here, before a server binds.
    """
    if not isinstance(config, ConfigurationManager):
        config = ConfigurationManager(config)
    return GatewayApp(config, manager=manager, authenticator=authenticator, tracer_provider=tracer_provider)


def create_app_from_env() -> GatewayApp:
    """The app for uvicorn's worker processes (``factory=True``): configuration from ``SPOON_LLM_CONFIG``."""
    app = create_app(None)
    app.tune_gc = True  # a worker process of ``spoon-llm serve``: the app owns it
    return app
