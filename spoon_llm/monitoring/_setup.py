"""Process-wide monitoring instances and the one-call way to attach them to a manager."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .debug_logger import DebugLogger
from .metrics import MetricsCollector

if TYPE_CHECKING:
    from ..manager import LLMManager
    from .otel import OpenTelemetryTracer
    from .prometheus import PrometheusExporter

__all__ = ["Monitoring", "attach_default_monitoring", "enable_monitoring", "get_debug_logger",
           "get_metrics_collector", "get_prometheus_exporter", "reset_monitoring"]

_lock = threading.RLock()
# The documented process-wide instances, created on first use; reset_monitoring() forgets them.
_instances: dict[str, Any] = {}
# Managers built with default monitoring: once someone asks for the process-wide debug logger, they feed it.
_default_managers: weakref.WeakSet[LLMManager] = weakref.WeakSet()


def get_debug_logger() -> DebugLogger:
    """The process-wide :class:`DebugLogger` (created on first use).

    Every manager built with default monitoring (``LLMManager(monitoring=True)``, the default) feeds it from
    the first call of this function on, as the older API's manager did; until then it costs them nothing.
    """
    with _lock:
        if "debug" not in _instances:
            _instances["debug"] = DebugLogger()
        logger: DebugLogger = _instances["debug"]
        for manager in list(_default_managers):
            _feed_debug(manager, logger)
        return logger


def _feed_debug(manager: LLMManager, logger: DebugLogger) -> None:
    _observe(manager, logger)
    if logger.middleware not in manager.middleware:
        manager.add_middleware(logger.middleware)


def attach_default_monitoring(manager: LLMManager, metrics: MetricsCollector | None = None) -> MetricsCollector:
    """Attach what a manager gets when it is built; returns the collector.

    That is ``metrics`` (default: the process-wide collector), and the process-wide debug logger once
    :func:`get_debug_logger` has been called.
    """
    collector = metrics if metrics is not None else get_metrics_collector()
    if not any(o is collector or getattr(o, "collector", None) is collector for o in manager.events.observers):
        manager.add_observer(_DefaultFeed(collector))
    with _lock:
        _default_managers.add(manager)
        logger = _instances.get("debug")
        if logger is not None:
            _feed_debug(manager, logger)
    return collector


def get_metrics_collector() -> MetricsCollector:
    """The process-wide :class:`MetricsCollector` (created on first use)."""
    with _lock:
        if "metrics" not in _instances:
            _instances["metrics"] = MetricsCollector()
        collector: MetricsCollector = _instances["metrics"]
        return collector


def get_prometheus_exporter() -> PrometheusExporter:
    """The process-wide :class:`~spoon_llm.monitoring.prometheus.PrometheusExporter` (needs the extra)."""
    from .prometheus import PrometheusExporter

    with _lock:
        if "prometheus" not in _instances:
            _instances["prometheus"] = PrometheusExporter()
        exporter: PrometheusExporter = _instances["prometheus"]
        return exporter


def reset_monitoring() -> None:
    """Forget the process-wide instances (tests; the next ``get_*`` builds fresh ones).

    Managers built before keep feeding the instances they were given.
    """
    with _lock:
        _instances.clear()
        _default_managers.clear()


@dataclass
class Monitoring:
    """What :func:`enable_monitoring` attached to a manager; :meth:`disable` detaches it again."""

    manager: LLMManager
    metrics: MetricsCollector | None = None
    debug: DebugLogger | None = None
    prometheus: PrometheusExporter | None = None
    otel: OpenTelemetryTracer | None = None

    def disable(self) -> None:
        """Stop observing the manager (the debug middleware stays but captures nothing once detached)."""
        for observer in (self.metrics, self.debug, self.otel):
            if observer is not None:
                self.manager.remove_observer(observer)
        if self.prometheus is not None:
            self.prometheus.detach(self.manager)
        if self.otel is not None:
            self.otel.close()


def enable_monitoring(
    manager: LLMManager,
    *,
    metrics: bool | MetricsCollector = True,
    debug: bool | DebugLogger = False,
    prometheus: bool | PrometheusExporter = False,
    otel: bool | OpenTelemetryTracer = False,
) -> Monitoring:
    """Attach monitoring to ``manager``: ``True`` uses the process-wide instance, or pass your own.

    ``otel=True`` traces with the global tracer provider. Attaching twice is harmless (each observer once).
    """
    result = Monitoring(manager)
    if metrics:
        result.metrics = get_metrics_collector() if metrics is True else metrics
        _observe(manager, result.metrics)
    if debug:
        result.debug = get_debug_logger() if debug is True else debug
        _observe(manager, result.debug)
        if result.debug.middleware not in manager.middleware:
            manager.add_middleware(result.debug.middleware)
    if prometheus:
        result.prometheus = get_prometheus_exporter() if prometheus is True else prometheus
        result.prometheus.attach(manager)
    if otel:
        if otel is True:
            from .otel import OpenTelemetryTracer

            otel = OpenTelemetryTracer()
        result.otel = otel
        _observe(manager, otel)
    return result


class _DefaultFeed:
    """A collector as every manager feeds it by default: all it counts but streams' time to first token.

    That one event per stream costs the manager more than the rest of the default feed together; attach the
    collector itself (``enable_monitoring(manager)``) to count it too.
    """

    __slots__ = ("collector", "on_event")

    event_kinds = MetricsCollector.event_kinds - {"first_token"}

    def __init__(self, collector: MetricsCollector) -> None:
        self.collector = collector
        self.on_event = collector.on_event  # the bus calls the collector directly: no extra call per event

    def __repr__(self) -> str:
        return f"_DefaultFeed({self.collector!r})"


def _observe(manager: LLMManager, observer: Any) -> None:
    for attached in list(manager.events.observers):
        if isinstance(attached, _DefaultFeed) and attached.collector is observer:
            manager.remove_observer(attached)  # the collector itself replaces its default feed
    if observer not in manager.events.observers:
        manager.add_observer(observer)
