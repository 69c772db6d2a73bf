"""OpenTelemetry spans of the gateway (``[server] otel = true``; extra ``otel``).

One ``SERVER`` span per inference request, named ``POST /v1/chat/completions``, continuing the client's trace
when the request carries W3C ``traceparent`` / ``tracestate`` headers. It is the current span while the manager
runs, so the library's request and attempt spans (:class:`~spoon_llm.monitoring.otel.OpenTelemetryTracer`, which
the gateway attaches with it) nest under it. Attributes: ``http.request.method``, ``url.path``,
``http.response.status_code``, ``spoon_llm.request_id``, ``spoon_llm.key_alias`` (never the key),
``gen_ai.request.model``, ``gen_ai.provider.name``, token counts, ``spoon_llm.cost_usd`` and
``spoon_llm.outcome``; a 5xx answer marks the span as an error. No prompt or answer text is recorded.

Spans go to the tracer provider given to :func:`~spoon_llm.server.create_app`, else to the global one (set it up
with the OpenTelemetry SDK, or run the server under ``opentelemetry-instrument``).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ._context import Call, Scope

__all__ = ["GatewayTracer"]

_PROPAGATED = (b"traceparent", b"tracestate", b"baggage")


class GatewayTracer:
    """Starts and ends the gateway's request spans."""

    __slots__ = ("tracer",)

    def __init__(self, tracer_provider: Any = None) -> None:
        from .. import __version__

        self.tracer = trace.get_tracer("spoon_llm.server", __version__, tracer_provider=tracer_provider)

    def start(self, scope: Scope, route: str, request_id: str) -> tuple[Any, object]:
        """Open the request's span and make it current; returns what :meth:`end` needs."""
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
                   if name in _PROPAGATED}
        parent = propagate.extract(carrier) if carrier else None
        method = scope["method"]
        span = self.tracer.start_span(f"{method} {scope['path']}", context=parent, kind=SpanKind.SERVER,
                                      attributes={"http.request.method": method, "url.path": scope["path"],
                                                  "spoon_llm.route": route, "spoon_llm.request_id": request_id})
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    @staticmethod
    def end(opened: tuple[Any, object], status: int, outcome: str, alias: str, request: Call | None) -> None:
        """Record the answer on the span, end it and restore the context it replaced."""
        span, token = opened
        try:
            span.set_attribute("http.response.status_code", status)
            span.set_attribute("spoon_llm.outcome", outcome)
            span.set_attribute("spoon_llm.key_alias", alias)
            if request is not None:
                if request.model:
                    span.set_attribute("gen_ai.request.model", request.model)
                if request.provider:
                    span.set_attribute("gen_ai.provider.name", request.provider)
                span.set_attribute("gen_ai.usage.input_tokens", request.tokens_in)
                span.set_attribute("gen_ai.usage.output_tokens", request.tokens_out)
                span.set_attribute("spoon_llm.cost_usd", request.cost)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, outcome))
        finally:
            otel_context.detach(token)  # type: ignore[arg-type]
            span.end()
