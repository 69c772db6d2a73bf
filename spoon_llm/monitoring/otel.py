"""OpenTelemetry traces of the request lifecycle (extra ``otel``: ``pip install "spoon-llm[otel]"``).

:class:`OpenTelemetryTracer` is an observer that opens one span per manager request and one child span per
attempt, following the GenAI semantic conventions:

* request span (``INTERNAL``), named ``{gen_ai.operation.name} {model}``: ``gen_ai.operation.name``,
  ``gen_ai.system`` / ``gen_ai.provider.name`` (the provider that answered or was tried last),
  ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.response.id``, ``gen_ai.response.finish_reasons``,
  ``gen_ai.usage.input_tokens`` / ``gen_ai.usage.output_tokens``, ``error.type``; plus ``spoon_llm.*`` attributes
  (route, attempts, time to first token, chunk count, cost, tags) and ``retry`` / ``fallback`` / ``first_token``
  span events.
* attempt spans (``CLIENT``), one per call to a provider, with the same ``gen_ai.*`` attributes for that call and
  ``spoon_llm.deployment``, ``spoon_llm.key_alias`` (the key's alias, never the key), ``spoon_llm.attempt``.

The request span's parent is whatever span is current where the application called the manager, so these spans
nest into the application's trace. No prompt or answer text is recorded; error descriptions are redacted.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
except ImportError as exc:  # pragma: no cover - exercised by the core-only install
    raise ImportError('OpenTelemetry tracing needs opentelemetry: pip install "spoon-llm[otel]"') from exc

from .metrics import error_name, event_cost
from .redaction import MASK, Redactor, is_secret_field

if TYPE_CHECKING:
    from ..events import Event

__all__ = ["OPERATION_NAMES", "OpenTelemetryTracer"]

#: Manager operations as GenAI ``gen_ai.operation.name`` values.
OPERATION_NAMES = {"chat": "chat", "chat_stream": "chat", "chat_with_tools": "chat",
                   "completion": "text_completion", "embed": "embeddings"}


def _ns(timestamp: float) -> int:
    return int(timestamp * 1e9)


class _Open:
    """A request span and what is still open under it."""

    __slots__ = ("attempt", "finished_attempt", "operation", "span")

    def __init__(self, span: trace.Span, operation: str) -> None:
        self.span = span
        self.operation = operation
        self.attempt: trace.Span | None = None
        # A successful attempt span waits for request_end to learn the response model, id and finish reason.
        self.finished_attempt: tuple[trace.Span, int] | None = None


class OpenTelemetryTracer:
    """Spans for requests and attempts; ``tracer_provider`` defaults to the global one.

    ``max_open`` bounds the requests followed at once: a request cancelled mid-way never sends its end event, so
    the oldest open spans are ended (marked ``spoon_llm.abandoned``) when the bound is reached.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None, *, tracer: trace.Tracer | None = None,
                 max_open: int = 10_000, secret_fields: tuple[str, ...] = ()) -> None:
        from .. import __version__

        self.tracer = tracer if tracer is not None else trace.get_tracer(
            "spoon_llm", __version__, tracer_provider=tracer_provider)
        self.max_open = max_open
        self.redactor = Redactor(secret_fields)
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()

    def on_event(self, event: Event) -> None:
        """Open, annotate or end spans for one lifecycle event."""
        kind = event.kind
        if kind == "request_start":
            self._start_request(event)
            return
        with self._lock:
            entry = self._open.pop(event.request_id, None) if kind == "request_end" else self._open.get(
                event.request_id)
        if entry is None:
            return
        if kind == "attempt_start":
            self._start_attempt(entry, event)
        elif kind == "attempt_end":
            self._end_attempt(entry, event)
        elif kind == "request_end":
            self._end_request(entry, event)
        elif kind in ("retry", "fallback"):
            entry.span.add_event(kind, {"spoon_llm.deployment": event.deployment or "",
                                        "spoon_llm.reason": error_name(event.error) or ""},
                                 timestamp=_ns(event.timestamp))
        elif kind == "first_token" and event.latency is not None:
            entry.span.set_attribute("spoon_llm.time_to_first_token", event.latency)
            entry.span.add_event("first_token", {"spoon_llm.time_to_first_token": event.latency},
                                 timestamp=_ns(event.timestamp))

    def _start_request(self, event: Event) -> None:
        operation = OPERATION_NAMES.get(event.operation, event.operation)
        route = event.data.get("route")
        attributes: dict[str, Any] = {"gen_ai.operation.name": operation, "spoon_llm.operation": event.operation}
        if isinstance(route, str):
            attributes["spoon_llm.route"] = route
        redactor = self.redactor
        for key, value in (event.tags or {}).items():  # a tag named like a credential is masked whole
            secret = is_secret_field(str(key), redactor.extra_fields)
            attributes[f"spoon_llm.tag.{key}"] = MASK if secret else redactor.text(str(value))
        # No explicit parent: the application's current span (if any) becomes the parent.
        span = self.tracer.start_span(f"{operation} {route}" if route else operation, kind=trace.SpanKind.INTERNAL,
                                      attributes=attributes, start_time=_ns(event.timestamp))
        evicted: list[_Open] = []
        with self._lock:
            while len(self._open) >= self.max_open:
                evicted.append(self._open.pop(next(iter(self._open))))
            self._open[event.request_id] = _Open(span, operation)
        for entry in evicted:
            self._abandon(entry)

    def _start_attempt(self, entry: _Open, event: Event) -> None:
        model = event.model or ""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": entry.operation,
            "gen_ai.system": event.provider or "",
            "gen_ai.provider.name": event.provider or "",
            "gen_ai.request.model": model,
            "spoon_llm.attempt": event.attempt,
        }
        if event.deployment:
            attributes["spoon_llm.deployment"] = event.deployment
        if event.key_alias:
            attributes["spoon_llm.key_alias"] = event.key_alias
        if event.waited:
            attributes["spoon_llm.waited"] = event.waited
        parent = trace.set_span_in_context(entry.span, otel_context.Context())
        entry.attempt = self.tracer.start_span(f"{entry.operation} {model}".rstrip(), context=parent,
                                               kind=trace.SpanKind.CLIENT, attributes=attributes,
                                               start_time=_ns(event.timestamp))

    def _end_attempt(self, entry: _Open, event: Event) -> None:
        span, entry.attempt = entry.attempt, None
        if span is None:
            return
        usage = event.usage
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        if event.error is not None:
            self._set_error(span, event.error)
            span.end(end_time=_ns(event.timestamp))
        else:
            self._flush_attempt(entry)
            entry.finished_attempt = (span, _ns(event.timestamp))

    def _flush_attempt(self, entry: _Open, response: Any = None) -> None:
        finished, entry.finished_attempt = entry.finished_attempt, None
        if finished is None:
            return
        span, end_time = finished
        if response is not None:
            self._set_response(span, response)
        span.end(end_time=end_time)

    def _end_request(self, entry: _Open, event: Event) -> None:
        span = entry.span
        self._flush_attempt(entry, event.response)
        if entry.attempt is not None:  # never left open by the manager, but never leak a span either
            entry.attempt.end(end_time=_ns(event.timestamp))
            entry.attempt = None
        provider = event.provider or getattr(event.error, "provider", None)
        model = event.model or getattr(event.error, "model", None)
        if provider:
            span.set_attribute("gen_ai.system", provider)
            span.set_attribute("gen_ai.provider.name", provider)
        if model:
            span.set_attribute("gen_ai.request.model", model)
            span.update_name(f"{entry.operation} {model}")
        if event.deployment:
            span.set_attribute("spoon_llm.deployment", event.deployment)
        span.set_attribute("spoon_llm.attempts", event.attempt)
        usage = event.usage
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        if event.chunk_count is not None:
            span.set_attribute("spoon_llm.chunk_count", event.chunk_count)
        cost = event_cost(event)
        if cost is not None:
            span.set_attribute("spoon_llm.cost_usd", cost)
        if event.response is not None:
            self._set_response(span, event.response)
        elif model and event.success:
            span.set_attribute("gen_ai.response.model", model)
        if event.error is not None:
            self._set_error(span, event.error)
        span.end(end_time=_ns(event.timestamp))

    @staticmethod
    def _set_response(span: trace.Span, response: Any) -> None:
        model = getattr(response, "model", None)
        if model:
            span.set_attribute("gen_ai.response.model", model)
        response_id = getattr(response, "request_id", None)
        if response_id:
            span.set_attribute("gen_ai.response.id", response_id)
        finish = getattr(response, "finish_reason", None)
        if finish:
            span.set_attribute("gen_ai.response.finish_reasons", [str(finish)])

    def _set_error(self, span: trace.Span, error: BaseException) -> None:
        span.set_attribute("error.type", error_name(error) or "error")
        status = getattr(error, "status_code", None)
        if isinstance(status, int):
            span.set_attribute("http.response.status_code", status)
        span.set_status(trace.Status(trace.StatusCode.ERROR, self.redactor.error(error)))

    @staticmethod
    def _abandon(entry: _Open) -> None:
        if entry.finished_attempt is not None:
            entry.finished_attempt[0].end(end_time=entry.finished_attempt[1])
        if entry.attempt is not None:
            entry.attempt.end()
        entry.span.set_attribute("spoon_llm.abandoned", True)
        entry.span.end()

    def close(self) -> None:
        """End every span still open (e.g. at shutdown)."""
        with self._lock:
            entries = list(self._open.values())
            self._open.clear()
        for entry in entries:
            self._abandon(entry)

    def __repr__(self) -> str:
        return f"OpenTelemetryTracer(open={len(self._open)}, max_open={self.max_open})"
