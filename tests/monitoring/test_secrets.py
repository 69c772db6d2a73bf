"""Every log and debug option on, at DEBUG: the API key appears in no log, metric, history, repr or error text."""

import json
import logging
import traceback

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spoon_llm.errors import AuthenticationError, LLMError
from spoon_llm.monitoring import (
    DebugLogger,
    JsonFormatter,
    MetricsCollector,
    OpenTelemetryTracer,
    PrometheusExporter,
    enable_monitoring,
)
from spoon_llm.testing import Fault

# Never registered anywhere and shaped like no vendor key: only the rules about field and header names can hide it.
UNREGISTERED = "plainvalue-0f9e8d7c6b5a4f3e2d1c"


def leaks(text: str, secrets: list[str]) -> list[str]:
    # Also look for a long tail of each secret: a partly masked key is still a leak.
    return [s for s in secrets if s in text or s[-12:] in text]


async def test_no_secret_anywhere_with_everything_on(sim, make_manager, keys, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: ours, the SDK's, the HTTP client's, the simulator's
    manager = make_manager({"primary": {"model": "model-primary", "extra_headers": {"x-custom-auth": keys["third"]}},
                            "backup": {"model": "model-backup"}}, fallback_chain=["primary", "backup"],
                           retry={"max_retries": 1})
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    debug = DebugLogger(log_requests=True, log_responses=True, secret_fields=["x-custom-auth"])
    debug.set_log_level(logging.DEBUG)
    metrics, exporter, tracer = MetricsCollector(), PrometheusExporter(), OpenTelemetryTracer(provider)
    enable_monitoring(manager, metrics=metrics, debug=debug, prometheus=exporter, otel=tracer)
    secrets = [keys["primary"], keys["backup"], keys["third"], UNREGISTERED]

    # A vendor that echoes the key in its error message (OpenAI does: "Incorrect API key provided: sk-...").
    sim.fault("openai", Fault.error(401, f"Incorrect API key provided: {keys['primary']}"), model="model-primary",
              times=1)
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=1)
    errors: list[LLMError] = []
    try:
        await manager.chat("hello", fallback=False)
    except AuthenticationError as exc:
        errors.append(exc)
    assert errors, "the 401 must surface"
    await manager.chat("hello again", tags={"user": "u1"})  # retried once, then served
    [c async for c in manager.chat_stream("stream please", temperature=0.1)]
    sim.fault("openai", Fault.rate_limited(retry_after=0), times=None)
    with pytest.raises(LLMError) as failed:
        await manager.chat("all down")
    errors.append(failed.value)
    # The explicit API, handed credentials the way careless callers do.
    rid = debug.log_request("openai", "chat", {
        "api_key": UNREGISTERED, "headers": {"Authorization": f"Bearer {UNREGISTERED}", "x-api-key": UNREGISTERED},
        "x-custom-auth": UNREGISTERED, "messages": [{"role": "user", "content": f"key={UNREGISTERED}"}],
    })
    debug.log_error(rid, RuntimeError(f"boom with Bearer {UNREGISTERED}"))
    debug.log_fallback("openai", "backup", f"api_key={UNREGISTERED}")

    texts = [caplog.text]
    texts += [JsonFormatter().format(record) for record in caplog.records]
    texts += [json.dumps(record.__dict__, default=str) for record in caplog.records]
    texts += [json.dumps(getter(), default=str) for getter in (
        metrics.get_summary, metrics.get_all_stats, metrics.get_performance_stats, metrics.get_recent_calls,
        lambda: metrics.get_all_stats(by="deployment"), lambda: metrics.get_all_stats(by="model"),
        debug.get_request_history, debug.get_active_requests, manager.get_status)]
    texts.append(exporter.generate_latest().decode())
    texts += [repr(obj) for obj in (metrics, debug, exporter, tracer, manager, debug.middleware)]
    for span in spans.get_finished_spans():
        texts.append(span.to_json())
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        texts += [str(e) + repr(e) for e in getattr(error, "errors", [])]
        texts += [json.dumps(getattr(error, "body", None), default=str), repr(getattr(error, "headers", None))]
    assert len(spans.get_finished_spans()) >= 8
    assert any("llm_call_failed" in text for text in texts)
    found = {i: leaks(text, secrets) for i, text in enumerate(texts)}
    assert not {i: f for i, f in found.items() if f}, [texts[i][:3000] for i, f in found.items() if f]


async def test_prompts_containing_a_key_are_redacted_in_our_own_outputs(sim, make_manager, keys, caplog):
    """The simulator echoes the prompt: a key pasted into a prompt must not survive request or response logging."""
    caplog.set_level(logging.DEBUG, logger="spoon_llm")
    manager = make_manager({"primary": {"model": "model-primary"}})
    debug = DebugLogger(log_requests=True, log_responses=True)
    enable_monitoring(manager, metrics=False, debug=debug)
    answer = await manager.chat(f"my key is {keys['primary']} and Bearer {UNREGISTERED}")
    assert keys["primary"] in answer.content  # the echo really carries it back
    [entry] = debug.get_request_history()
    ours = caplog.text + json.dumps(entry)
    assert entry["request"] and entry["response"]
    assert not leaks(ours, [keys["primary"], UNREGISTERED])


async def test_traceback_chain_of_a_401_does_not_carry_the_key(sim, make_manager, keys):
    manager = make_manager({"primary": {"model": "model-primary"}})
    sim.fault("openai", Fault.error(401, f"Incorrect API key provided: {keys['primary']}"), times=1)
    with pytest.raises(AuthenticationError) as raised:
        await manager.chat("hi")
    assert not leaks("".join(traceback.format_exception(raised.value)), [keys["primary"]])
