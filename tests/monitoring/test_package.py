"""The monitoring package: what importing it loads, what it exports, and enable_monitoring's wiring."""

import subprocess
import sys

import spoon_llm.monitoring as monitoring
from spoon_llm.monitoring import (
    DebugLogger,
    MetricsCollector,
    enable_monitoring,
    get_debug_logger,
    get_metrics_collector,
)

CHECK = """
import sys
import spoon_llm
assert "spoon_llm.monitoring" not in sys.modules, "import spoon_llm must not load monitoring"
import spoon_llm.monitoring as m
m.enable_monitoring  # the core API is there
m.get_metrics_collector().record_request("p", "chat", 0.1, True)
m.get_debug_logger().log_request("p", "chat")
heavy = sorted(n for n in sys.modules if n.split(".")[0] in ("prometheus_client", "opentelemetry"))
assert not heavy, heavy
"""


def test_importing_loads_neither_prometheus_nor_opentelemetry():
    subprocess.run([sys.executable, "-c", CHECK], check=True, capture_output=True, text=True, timeout=60)


def test_exported_names():
    assert sorted(monitoring.__all__) == sorted([
        "DebugCapture", "DebugLogger", "HealthMonitor", "JsonFormatter", "MetricsCollector", "MetricsServer",
        "Monitoring",
        "OpenTelemetryTracer", "PrometheusExporter", "QuantileSketch", "Redactor", "RequestRecord",
        "enable_monitoring", "get_debug_logger", "get_metrics_collector", "get_prometheus_exporter", "redact",
        "reset_monitoring", "serve_metrics",
    ])
    for name in monitoring.__all__:
        assert getattr(monitoring, name) is not None


async def test_enable_monitoring_attaches_once_and_disable_detaches(sim, make_manager):
    manager = make_manager({"primary": {"model": "model-primary"}})
    first = enable_monitoring(manager, metrics=True, debug=True)
    enable_monitoring(manager, metrics=True, debug=True)
    assert manager.events.observers == [get_metrics_collector(), get_debug_logger()]
    assert [m.name for m in manager.middleware] == ["rate_limit", "cost", "debug_logger"]  # default chain first
    await manager.chat("hi")
    assert first.metrics.get_summary()["requests"]["total"] == 1
    assert len(first.debug.get_request_history()) == 1
    first.disable()
    assert manager.events.observers == []
    await manager.chat("hi")
    assert first.metrics.get_summary()["requests"]["total"] == 1


async def test_own_instances_and_metrics_off(sim, make_manager):
    manager = make_manager({"primary": {"model": "model-primary"}}, monitoring=False)  # nothing attached by default
    metrics, debug = MetricsCollector(), DebugLogger()
    result = enable_monitoring(manager, metrics=False, debug=debug)
    assert result.metrics is None and manager.events.observers == [debug]
    enable_monitoring(manager, metrics=metrics)
    assert manager.events.observers == [debug, metrics]


WITHOUT_EXTRAS = """
import sys
sys.modules["prometheus_client"] = None  # as if the extras were not installed
sys.modules["opentelemetry"] = None
import spoon_llm.monitoring as m
m.enable_monitoring  # metrics and the debug logger work without extras
m.get_metrics_collector().record_request("p", "chat", 0.1, True)
for name, extra in (("PrometheusExporter", "prometheus"), ("OpenTelemetryTracer", "otel")):
    try:
        getattr(m, name)
    except ImportError as exc:
        assert f"spoon-llm[{extra}]" in str(exc), exc
    else:
        raise AssertionError(name + " imported without its extra")
"""


def test_without_the_extras_the_error_names_what_to_install():
    subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS], check=True, capture_output=True, text=True, timeout=60)
