"""Monitoring: request lifecycle events turned into metrics, debug history, structured logs, Prometheus, traces.

Every consumer is an observer of the manager's event stream (:mod:`spoon_llm.events`) and costs nothing until it
is attached::

    from spoon_llm.monitoring import enable_monitoring, get_metrics_collector

    enable_monitoring(manager, metrics=True, debug=False, prometheus=False, otel=False)
    ...
    print(get_metrics_collector().get_provider_stats("openai"))

* :class:`MetricsCollector` (``get_metrics_collector()``): counters and latency quantiles by provider, model and
  deployment, in bounded memory.
* :class:`DebugLogger` (``get_debug_logger()``): redacted request history and structured log records.
* :class:`~spoon_llm.health.HealthMonitor`: background health checks (``HealthMonitor().start_monitoring(60)``).
* ``PrometheusExporter`` / ``serve_metrics`` (extra ``prometheus``) and ``OpenTelemetryTracer`` (extra ``otel``)
  are imported only when first named, so this package never loads ``prometheus_client`` or ``opentelemetry``
  by itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from ._setup import (
    Monitoring,
    enable_monitoring,
    get_debug_logger,
    get_metrics_collector,
    get_prometheus_exporter,
    reset_monitoring,
)
from .debug_logger import DebugCapture, DebugLogger, RequestRecord
from .metrics import MetricsCollector
from .redaction import Redactor, redact
from .sketch import QuantileSketch
from .structured_logging import JsonFormatter

if TYPE_CHECKING:
    from ..health import HealthMonitor
    from .otel import OpenTelemetryTracer
    from .prometheus import MetricsServer, PrometheusExporter, serve_metrics

__all__ = [
    "DebugCapture",
    "DebugLogger",
    "HealthMonitor",
    "JsonFormatter",
    "MetricsCollector",
    "MetricsServer",
    "Monitoring",
    "OpenTelemetryTracer",
    "PrometheusExporter",
    "QuantileSketch",
    "Redactor",
    "RequestRecord",
    "enable_monitoring",
    "get_debug_logger",
    "get_metrics_collector",
    "get_prometheus_exporter",
    "redact",
    "reset_monitoring",
    "serve_metrics",
]

# Names whose modules need an extra: imported on first access only.
_LAZY = {
    "HealthMonitor": "..health",
    "PrometheusExporter": ".prometheus",
    "MetricsServer": ".prometheus",
    "serve_metrics": ".prometheus",
    "OpenTelemetryTracer": ".otel",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
