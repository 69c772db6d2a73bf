"""Observability that must never cost a request or tell a lie: a log handler that raises, model labels chosen by
clients, cancelled requests, cache hits, credentials in tags and camelCase fields, the health monitor's interval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from spoon_llm.monitoring import OpenTelemetryTracer, PrometheusExporter
from spoon_llm.monitoring.debug_logger import DebugLogger
from spoon_llm.monitoring.redaction import Redactor
from spoon_llm.server._ops import MAX_MODELS, AdmissionGate, GatewayMetrics
from spoon_llm.testing import Fault

from .test_prometheus import value

ONE = {"primary": {"model": "model-primary"}}


class _Broken(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise RuntimeError("log shipper down")


@pytest.fixture
def broken_root_handler() -> Iterator[None]:
    handler = _Broken(level=logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_log_handler_that_raises_never_fails_a_request(sim, make_manager, broken_root_handler) -> None:
    manager = make_manager({"primary": {"model": "model-primary"}, "backup": {"model": "model-backup"}},
                           fallback_chain=["primary", "backup"], retry={"max_retries": 0})
    debug = DebugLogger(log_requests=True, log_responses=True)
    manager.add_observer(debug)
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=1)  # warnings on the way to the backup
    answer = await manager.chat("hi")
    assert answer.content and manager.get_stats()["successes"] == 1


async def test_model_labels_are_bounded(sim, make_manager) -> None:
    manager = make_manager(ONE, strict_models=False)
    exporter = PrometheusExporter(max_models=3)
    exporter.attach(manager)
    for index in range(6):
        await manager.chat("hi", model=f"client-model-{index}")
    models = {sample.labels["model"] for family in text_string_to_metric_families(exporter.generate_latest().decode())
              for sample in family.samples if "model" in sample.labels}
    assert len(models - {"__other__"}) <= 3 and "__other__" in models
    metrics = GatewayMetrics(AdmissionGate(1, 0, 1.0, 1))
    for index in range(MAX_MODELS + 50):
        metrics.record("chat", 404, "-", f"openai/junk-{index}", "", 0.001, 0.0, 0, 0)
    assert len({key[3] for key in metrics.series}) == MAX_MODELS + 1  # the rest under __other__


async def test_a_cancelled_request_is_counted_as_cancelled_not_as_an_error(sim, make_manager) -> None:
    manager = make_manager(ONE)
    exporter = PrometheusExporter()
    exporter.attach(manager)
    stream = manager.chat_stream("tell me a story")
    async for _ in stream:
        break
    await stream.aclose()
    assert value(exporter, "spoon_llm_requests_total", status="cancelled") == 1
    assert value(exporter, "spoon_llm_requests_total", status="error") == 0


async def test_cache_hits_are_not_counted_as_calls_to_the_provider(sim, make_manager) -> None:
    manager = make_manager(ONE, cache={"enabled": True})
    exporter = PrometheusExporter()
    exporter.attach(manager)
    for _ in range(3):
        await manager.chat("same question")
    assert len(sim.requests) == 1
    assert value(exporter, "spoon_llm_attempts_total", outcome="success") == 1
    assert value(exporter, "spoon_llm_attempts_total", outcome="short_circuit") == 2
    assert value(exporter, "spoon_llm_attempt_duration_seconds_count") == 1


async def test_credential_tags_are_masked_in_spans(sim, make_manager) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    try:
        manager = make_manager(ONE)
        manager.add_observer(OpenTelemetryTracer(provider))
        secret = "tenant-secret-qwertyuiopasdfghjk"
        await manager.chat("hi", tags={"team": "a", "api_key": secret, "password": secret})
        attributes = [dict(s.attributes or {}) for s in spans.get_finished_spans()]
        assert all(secret not in str(a) for a in attributes)
        assert any(a.get("spoon_llm.tag.team") == "a" for a in attributes)
    finally:
        provider.shutdown()


def test_camel_case_credential_fields_are_masked() -> None:
    masked = Redactor()({"accessToken": "s1", "refreshToken": "s2", "idToken": "s3", "maxTokens": 5,
                         "inputTokens": 7})
    assert masked == {"accessToken": "***", "refreshToken": "***", "idToken": "***", "maxTokens": 5,
                      "inputTokens": 7}


async def test_a_later_health_monitoring_interval_applies(sim, make_manager) -> None:
    manager = make_manager(ONE)
    monitor = manager.start_health_monitoring(30)
    await manager.stop_health_monitoring()
    assert manager.start_health_monitoring(0.2) is monitor and monitor.interval == 0.2
    await manager.stop_health_monitoring()
    await asyncio.sleep(0)


async def test_a_cancelled_request_is_not_a_failure_in_the_collector_or_the_debug_log(sim, make_manager) -> None:
    from spoon_llm.monitoring import MetricsCollector

    manager = make_manager(ONE)
    collector, debug = MetricsCollector(), DebugLogger()
    manager.add_observer(collector)
    manager.add_observer(debug)
    stream = manager.chat_stream("tell me a story")
    async for _ in stream:
        break
    await stream.aclose()
    await manager.chat("hi")
    requests = collector.get_summary()["requests"]
    assert (requests["total"], requests["successful"], requests["failed"], requests["cancelled"]) == (2, 1, 0, 1)
    assert "Cancelled" not in requests["error_counts"]
    assert sorted(r["status"] for r in debug.get_request_history()) == ["cancelled", "success"]
