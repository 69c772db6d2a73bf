"""PrometheusExporter: isolated registries, circuit state, in-flight gauge, the standalone and ASGI endpoints."""

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from spoon_llm.monitoring import PrometheusExporter, enable_monitoring, get_prometheus_exporter, serve_metrics
from spoon_llm.testing import Fault

TWO = {"primary": {"model": "model-primary"}, "backup": {"model": "model-backup"}}


def value(exporter, name, **labels):
    total = 0.0
    for family in text_string_to_metric_families(exporter.generate_latest().decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_counters_tokens_and_circuit_state(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 0},
                           manager_kwargs={"circuit_breaker": {"failure_threshold": 1}})
    exporter, other = PrometheusExporter(), PrometheusExporter()
    exporter.attach(manager)
    assert value(exporter, "spoon_llm_circuit_state", deployment="primary") == 0
    sim.fault("openai", Fault.server_error(), model="model-primary", times=1)
    response = await manager.chat("hi")
    assert value(exporter, "spoon_llm_requests_total", provider="backup", status="success") == 1
    assert value(exporter, "spoon_llm_attempts_total", deployment="primary",
                 outcome="ProviderUnavailableError") == 1
    assert value(exporter, "spoon_llm_fallbacks_total", deployment="primary") == 1
    assert value(exporter, "spoon_llm_tokens_total", type="output") == response.usage.output_tokens
    assert value(exporter, "spoon_llm_circuit_state", deployment="primary") == 2  # open
    assert value(exporter, "spoon_llm_circuit_changes_total", deployment="primary", state="open") == 1
    assert value(other, "spoon_llm_requests_total") == 0  # a registry of its own: nothing shared
    exporter.detach(manager)
    await manager.chat("hi")
    assert value(exporter, "spoon_llm_requests_total") == 1


async def test_failed_requests_are_labelled_with_the_last_provider_tried(sim, make_manager):
    manager = make_manager({"primary": {"model": "model-primary"}}, retry={"max_retries": 0})
    exporter = PrometheusExporter()
    exporter.attach(manager)
    sim.fault("openai", Fault.unavailable(), times=1)
    try:
        await manager.chat("hi")
    except Exception:
        pass
    assert value(exporter, "spoon_llm_requests_total", provider="primary", model="model-primary",
                 status="error") == 1


async def test_in_flight_gauge_follows_the_manager(sim, make_manager):
    manager = make_manager(TWO)
    exporter = PrometheusExporter()
    exporter.attach(manager)
    sim.fault("openai", Fault(delay=0.3), times=1)
    task = asyncio.create_task(manager.chat("slow"))
    await asyncio.sleep(0.1)
    assert value(exporter, "spoon_llm_requests_in_flight") == 1
    await task
    assert value(exporter, "spoon_llm_requests_in_flight") == 0
    unattached = PrometheusExporter()  # without a manager the gauge counts events
    assert value(unattached, "spoon_llm_requests_in_flight") == 0


async def test_serve_metrics_on_loopback_and_the_asgi_app(sim, make_manager):
    manager = make_manager(TWO)
    enable_monitoring(manager, metrics=False, prometheus=True)
    await manager.chat("hi")
    with serve_metrics(0) as server:
        assert server.host == "127.0.0.1"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(server.url, timeout=5).read().decode())
    assert 'spoon_llm_requests_total{model="model-primary",operation="chat",provider="primary",status="success"} 1.0' \
        in body
    assert get_prometheus_exporter().content_type.startswith("text/plain")

    app = get_prometheus_exporter().asgi_app()
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"", "headers": []}
    await app(scope, receive, send)
    assert sent[0]["status"] == 200 and b"spoon_llm_requests_total" in sent[1]["body"]


def test_budget_alerts_and_circuit_events_without_a_manager():
    from spoon_llm.events import Event

    exporter = PrometheusExporter()
    exporter.on_event(Event("budget_alert", "r1", data={"budget": "monthly", "level": "warning", "spent": 7.5}))
    exporter.on_event(Event("circuit_change", "", deployment="d1", data={"old": "open", "new": "half_open"}))
    assert value(exporter, "spoon_llm_budget_alerts_total", budget="monthly", level="warning") == 1
    assert value(exporter, "spoon_llm_circuit_state", deployment="d1") == 1
    exporter.on_event(Event("request_start", "r2", "chat"))
    assert value(exporter, "spoon_llm_requests_in_flight") == 1
    exporter.on_event(Event("request_end", "r2", "chat", success=True, latency=0.1, cost=0.02,
                            provider="openai", model="m"))
    assert value(exporter, "spoon_llm_requests_in_flight") == 0
    assert value(exporter, "spoon_llm_cost_usd_total", provider="openai") == 0.02
