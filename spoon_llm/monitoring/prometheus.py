"""Prometheus exposition of the request lifecycle (extra ``prometheus``: ``pip install "spoon-llm[prometheus]"``).

:class:`PrometheusExporter` is an observer that keeps its metrics in its own ``CollectorRegistry`` (never the
global default, so two exporters, or two tests, never share series). Metrics (prefix ``spoon_llm_``):

* ``requests_total{operation,provider,model,status}`` and ``request_duration_seconds`` (histogram): what the
  application saw, one per manager call; a failed request is labelled with the last provider it tried.
* ``attempts_total{provider,model,deployment,outcome}`` (``outcome`` is ``success`` or the error class) and
  ``attempt_duration_seconds``: what each provider saw.
* ``time_to_first_token_seconds{provider,model}`` (histogram), ``stream_chunks_total{provider,model}``.
* ``tokens_total{provider,model,type}`` (``input`` / ``output``), ``cost_usd_total{provider,model}``.
* ``retries_total`` / ``fallbacks_total{provider,deployment}`` (the deployment retried or left).
* ``requests_in_flight`` (gauge; exact from the attached managers' counters, else counted from events).
* ``circuit_state{deployment}`` (0 closed, 1 half-open, 2 open), ``circuit_changes_total{deployment,state}``,
  ``budget_alerts_total{budget,level}``.

Serve them with :func:`serve_metrics` (a standalone HTTP server on 127.0.0.1), or mount
:meth:`PrometheusExporter.asgi_app` / :meth:`PrometheusExporter.wsgi_app` in a web app.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge
except ImportError as exc:  # pragma: no cover - exercised by the core-only install
    raise ImportError('Prometheus metrics need prometheus-client: pip install "spoon-llm[prometheus]"') from exc

from ._prom_series import CounterSeries, HistogramSeries, SeriesCollector
from .metrics import error_name, event_cost

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from ..events import Event
    from ..manager import LLMManager

__all__ = ["CIRCUIT_STATES", "CONTENT_TYPE", "MetricsServer", "PrometheusExporter", "serve_metrics"]

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
#: Gauge value of each circuit state.
CIRCUIT_STATES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
UNKNOWN = "unknown"
#: The label of every model name beyond the exporter's ``max_models``.
OTHER = "__other__"


class PrometheusExporter:
    """Turns lifecycle events into Prometheus metrics in a registry of its own (``self.registry``).

    ``max_open`` bounds the requests followed at once (a request cancelled mid-way never sends its end event);
    ``max_models`` the distinct model names used as labels (beyond it ``__other__``: clients may choose them).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace: str = "spoon_llm",
        latency_buckets: Sequence[float] = LATENCY_BUCKETS,
        ttft_buckets: Sequence[float] = TTFT_BUCKETS,
        max_open: int = 10_000,
        max_models: int = 500,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_open = max_open
        self.max_models = max_models
        self._models: set[str] = set()
        r, ns = self.registry, namespace
        # The series every request updates are plain numbers under this exporter's lock (see _prom_series);
        # the rare ones stay prometheus_client metrics.
        self.requests = CounterSeries("requests", "Requests the application made, by outcome.",
                                      ["operation", "provider", "model", "status"], ns)
        self.request_duration = HistogramSeries("request_duration_seconds",
                                                "End-to-end request latency (all attempts).",
                                                ["operation", "provider", "model"], ns, latency_buckets)
        self.attempts = CounterSeries("attempts", "Calls to providers (one per attempt), by outcome or error class.",
                                      ["provider", "model", "deployment", "outcome"], ns)
        self.attempt_duration = HistogramSeries("attempt_duration_seconds", "Latency of one provider call.",
                                                ["provider", "model", "deployment"], ns, latency_buckets)
        self.ttft = HistogramSeries("time_to_first_token_seconds",
                                    "Time from request start to a stream's first chunk.", ["provider", "model"], ns,
                                    ttft_buckets)
        self.chunks = CounterSeries("stream_chunks", "Chunks delivered by streams.", ["provider", "model"], ns)
        self.tokens = CounterSeries("tokens", "Tokens billed, by type.", ["provider", "model", "type"], ns)
        self.cost = CounterSeries("cost_usd", "Cost of requests in USD.", ["provider", "model"], ns)
        self.retries = CounterSeries("retries", "Retries of the same deployment.", ["provider", "deployment"], ns)
        self.fallbacks = CounterSeries("fallbacks", "Moves away from a failing deployment.",
                                       ["provider", "deployment"], ns)
        r.register(SeriesCollector([self.requests, self.request_duration, self.attempts, self.attempt_duration,
                                    self.ttft, self.chunks, self.tokens, self.cost, self.retries, self.fallbacks]))
        self.in_flight = Gauge("requests_in_flight", "Requests in progress.", namespace=ns, registry=r)
        self.circuit_state = Gauge("circuit_state", "Circuit breaker state (0 closed, 1 half-open, 2 open).",
                                   ["deployment"], namespace=ns, registry=r)
        self.circuit_changes = Counter("circuit_changes", "Circuit breaker transitions, by new state.",
                                       ["deployment", "state"], namespace=ns, registry=r)
        self.budget_alerts = Counter("budget_alerts", "Budget alert thresholds crossed.", ["budget", "level"],
                                     namespace=ns, registry=r)
        self._lock = threading.Lock()
        self._open: dict[str, tuple[str, str]] = {}  # request_id -> (provider, model) of its latest attempt
        self._open_count = 0
        self._managers: weakref.WeakSet[LLMManager] = weakref.WeakSet()
        self._children: dict[tuple[Any, ...], Any] = {}
        #: (provider, model, deployment, outcome) -> the attempts counter and the attempt duration histogram.
        self._attempt_children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self.in_flight.set_function(self._in_flight)

    # -- wiring ---------------------------------------------------------------------------------------------

    def attach(self, manager: LLMManager) -> None:
        """Observe ``manager``, take its in-flight count and the current circuit state of its deployments."""
        if self not in manager.events.observers:
            manager.add_observer(self)
        self._managers.add(manager)
        for name, status in manager.get_provider_status().items():
            state = status.get("circuit", {}).get("state", "closed")
            self.circuit_state.labels(name).set(CIRCUIT_STATES.get(str(state), 0.0))

    def detach(self, manager: LLMManager) -> None:
        """Stop observing ``manager``."""
        manager.remove_observer(self)
        self._managers.discard(manager)

    def _in_flight(self) -> float:
        managers = list(self._managers)
        if managers:
            return float(sum(m.get_stats()["inflight"] for m in managers))
        return float(self._open_count)

    def _model(self, model: str | None) -> str:
        """``model`` as a label value; beyond ``max_models`` distinct names (clients choose them) ``__other__``."""
        if model is None:
            return UNKNOWN
        models = self._models
        if model in models:
            return model
        if len(models) < self.max_models:
            models.add(model)
            return model
        return OTHER

    def _child(self, metric: Any, *labels: str) -> Any:
        # One dict lookup for the metric and its labels together.
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- the observer ---------------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Update the metrics from one lifecycle event (under the exporter's lock: events may come from threads)."""
        kind = event.kind
        with self._lock:
            if kind == "attempt_end":
                self._attempt_end(event)
            elif kind == "attempt_start":
                if event.request_id in self._open:
                    self._open[event.request_id] = (event.provider or UNKNOWN, self._model(event.model))
            elif kind == "request_start":
                while len(self._open) >= self.max_open:
                    del self._open[next(iter(self._open))]
                    self._open_count -= 1
                self._open[event.request_id] = (UNKNOWN, UNKNOWN)
                self._open_count += 1
            elif kind == "request_end":
                self._request_end(event)
            elif kind == "first_token":
                self._child(self.ttft, event.provider or UNKNOWN, self._model(event.model)).observe(
                    event.latency or 0.0)
            elif kind == "retry":
                self._child(self.retries, event.provider or UNKNOWN, event.deployment or UNKNOWN).inc()
            elif kind == "fallback":
                self._child(self.fallbacks, event.provider or UNKNOWN, event.deployment or UNKNOWN).inc()
            elif kind == "circuit_change":
                state = str(event.data.get("new", ""))
                deployment = event.deployment or UNKNOWN
                self.circuit_state.labels(deployment).set(CIRCUIT_STATES.get(state, 0.0))
                self.circuit_changes.labels(deployment, state).inc()
            elif kind == "budget_alert":
                data = event.data
                self.budget_alerts.labels(str(data.get("budget", UNKNOWN)), str(data.get("level", UNKNOWN))).inc()

    def _attempt_end(self, event: Event) -> None:
        provider, deployment = event.provider or UNKNOWN, event.deployment or UNKNOWN
        model = self._model(event.model)
        error = event.error
        if error is None and event.data.get("short_circuit"):
            # Answered by middleware (a cache hit): counted apart, and kept out of the provider's latency.
            self._child(self.attempts, provider, model, deployment, "short_circuit").inc()
            return
        outcome = "success" if error is None else (error_name(error) or "error")
        # One lookup for the two series every attempt updates (not one key tuple and dict lookup each).
        key = (provider, model, deployment, outcome)
        children = self._attempt_children.get(key)
        if children is None:
            children = self._attempt_children[key] = (
                self._child(self.attempts, provider, model, deployment, outcome),
                self._child(self.attempt_duration, provider, model, deployment))
        children[0].inc()
        children[1].observe(event.latency or 0.0)
        usage = event.usage
        if usage is not None:
            if usage.input_tokens:
                self._child(self.tokens, provider, model, "input").inc(usage.input_tokens)
            if usage.output_tokens:
                self._child(self.tokens, provider, model, "output").inc(usage.output_tokens)

    def _request_end(self, event: Event) -> None:
        last = self._open.pop(event.request_id, None)
        if last is not None:
            self._open_count -= 1
        if event.provider is not None:
            provider, model = event.provider, self._model(event.model)
        elif last is not None:
            provider, model = last
        else:
            provider, model = getattr(event.error, "provider", None) or UNKNOWN, UNKNOWN
        status = "success" if event.success else ("cancelled" if event.error is None else "error")
        self._child(self.requests, event.operation, provider, model, status).inc()
        self._child(self.request_duration, event.operation, provider, model).observe(event.latency or 0.0)
        if event.chunk_count:
            self._child(self.chunks, provider, model).inc(event.chunk_count)
        cost = event_cost(event)
        if cost:
            self._child(self.cost, provider, model).inc(cost)

    # -- exposition -----------------------------------------------------------------------------------------

    def generate_latest(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return prometheus_client.generate_latest(self.registry)

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` of :meth:`generate_latest`."""
        return CONTENT_TYPE

    def wsgi_app(self) -> Callable[..., Any]:
        """A WSGI app serving the metrics (any path)."""
        return prometheus_client.make_wsgi_app(self.registry)

    def asgi_app(self) -> Callable[..., Any]:
        """An ASGI app serving the metrics, to mount in the gateway (``app.mount("/metrics", ...)``)."""
        return prometheus_client.make_asgi_app(self.registry)

    def __repr__(self) -> str:
        return f"PrometheusExporter(open_requests={self._open_count}, managers={len(self._managers)})"


class MetricsServer:
    """A running standalone ``/metrics`` server; :meth:`close` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MetricsServer({self.url!r})"


def serve_metrics(port: int = 0, host: str = "127.0.0.1", exporter: PrometheusExporter | None = None) -> MetricsServer:
    """Serve ``exporter``'s metrics (default: the process-wide one) over HTTP from a daemon thread.

    ``port=0`` picks a free port (read it from the returned server). The default host keeps the endpoint local;
    pass ``host="0.0.0.0"`` deliberately to expose it.
    """
    if exporter is None:
        from . import get_prometheus_exporter

        exporter = get_prometheus_exporter()
    server, thread = prometheus_client.start_http_server(port, addr=host, registry=exporter.registry)
    return MetricsServer(server, thread)
