"""The all-options secrets test on both transports, with an upstream that echoes the key in bodies and headers.

``tests/monitoring/test_secrets.py`` turns every log and debug option on against the simulator on the default
transport. Here the same outputs are collected with the vendor SDK (and, as the control, the native client) as
transport, the primary being a raw 127.0.0.1 server that answers 401 and then 500 with the key in the body and in
response headers, DEBUG on the root logger (ours, the SDKs', httpx2/httpcore2, aiohttp). Neither the key nor its
last 8 characters may appear in any log line, metric, history, span, repr, error text or formatted traceback.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.errors import LLMError
from spoon_llm.manager import LLMManager
from spoon_llm.monitoring import (
    DebugLogger,
    JsonFormatter,
    MetricsCollector,
    OpenTelemetryTracer,
    PrometheusExporter,
    enable_monitoring,
    reset_monitoring,
)
from spoon_llm.testing import ProviderSimulator

from ._raw import Raw, RawServer
from .test_secrets_wire import _everything

PRIMARY = "sk-proj-AllOptionsPrimary000000000000Jd52Wc73"
BACKUP = "sk-proj-AllOptionsBackup0000000000000Tf19Gs46"


@pytest.fixture(autouse=True)
def _fresh_monitoring() -> Iterator[None]:
    reset_monitoring()
    yield
    reset_monitoring()


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    async with RawServer() as server:
        yield server


def _echo(status: int) -> Raw:
    body = {"error": {"message": f"Incorrect API key provided: {PRIMARY} (...{PRIMARY[-8:]})",
                      "type": "invalid_request_error", "code": "invalid_api_key", "key": PRIMARY}}
    return Raw(status=status, headers={"x-echo": PRIMARY, "www-authenticate": f"Bearer {PRIMARY}",
                                       "x-key-tail": PRIMARY[-8:]}, parts=[json.dumps(body).encode()])


@pytest.mark.parametrize("transport", ["sdk", "native"])
async def test_no_key_anywhere_with_everything_on(raw: RawServer, transport: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    caplog.set_level(logging.DEBUG)  # the root logger: ours, the SDKs', httpx2/httpcore2, aiohttp
    with ProviderSimulator() as sim:
        section: dict[str, Any] = {"type": "openai", "transport": transport}
        manager = LLMManager(ConfigurationManager({
            "providers": {
                # A rejected key takes its deployment out of rotation: one section per call that meets the 401.
                **{name: {**section, "base_url": raw.url + "/v1", "api_key": PRIMARY, "model": "m-primary"}
                   for name in ("primary", "rejected-chat", "rejected-stream")},
                "backup": {**section, "base_url": sim.openai_base_url, "api_key": BACKUP, "model": "m-backup"},
            },
            "fallback_chain": ["primary", "backup"],
            "retry": {"max_retries": 1, "initial_backoff": 0.001, "max_backoff": 0.005},
        }, env={}))
        spans = InMemorySpanExporter()
        tracing = TracerProvider()
        tracing.add_span_processor(SimpleSpanProcessor(spans))
        debug = DebugLogger(log_requests=True, log_responses=True)
        debug.set_log_level(logging.DEBUG)
        metrics, exporter, tracer = MetricsCollector(), PrometheusExporter(), OpenTelemetryTracer(tracing)
        enable_monitoring(manager, metrics=metrics, debug=debug, prometheus=exporter, otel=tracer)
        errors: list[BaseException] = []
        try:
            for status, chat_on, stream_on in ((401, "rejected-chat", "rejected-stream"), (500, "primary", "primary")):
                raw.answer = _echo(status)
                with pytest.raises(LLMError) as caught:
                    await manager.chat("hello", provider=chat_on, fallback=False)
                errors.append(caught.value)
                with pytest.raises(LLMError) as caught:
                    async for _ in manager.chat_stream("stream please", provider=stream_on, fallback=False):
                        pass
                errors.append(caught.value)
            assert {type(e).__name__ for e in errors[:2]} == {"AuthenticationError"}, errors
            # The 500 is retried, then the backup answers: the failed attempts are in every trace.
            answer = await manager.chat("hello again")
            assert answer.deployment == "backup"
            chunks = [c async for c in manager.chat_stream("stream please")]
            assert chunks[-1].metadata["deployment"] == "backup"
            texts = [caplog.text, *(JsonFormatter().format(r) for r in caplog.records)]
            texts += [json.dumps(r.__dict__, default=str) for r in caplog.records]
            texts += [json.dumps(getter(), default=str) for getter in (
                metrics.get_summary, metrics.get_all_stats, metrics.get_recent_calls,
                lambda: metrics.get_all_stats(by="deployment"), debug.get_request_history, manager.get_status)]
            texts.append(exporter.generate_latest().decode())
            texts += [repr(obj) for obj in (metrics, debug, exporter, tracer, manager)]
            texts += [span.to_json() for span in spans.get_finished_spans()]
            texts += [_everything(error) for error in errors]
            texts += ["".join(traceback.format_exception(e)) for error in errors for e in getattr(error, "errors", [])]
        finally:
            await manager.cleanup()
    assert raw.requests >= 6 and any("invalid_api_key" in t or "401" in t for t in texts)
    leaked = [t[:2000] for t in texts if PRIMARY in t or PRIMARY[-8:] in t or BACKUP in t or BACKUP[-8:] in t]
    assert leaked == []
