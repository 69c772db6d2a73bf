"""1,000 requests with injected faults: metrics, Prometheus, debug history and simulator records agree."""

import asyncio
import math
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from spoon_llm.errors import LLMError
from spoon_llm.monitoring import DebugLogger, MetricsCollector, PrometheusExporter, enable_monitoring
from spoon_llm.testing import Fault

N = 1000
MODELS = {"primary": "model-primary", "backup": "model-backup"}


def samples(exporter, name):
    for family in text_string_to_metric_families(exporter.generate_latest().decode()):
        for sample in family.samples:
            if sample.name == name:
                yield sample.labels, sample.value


def exact_quantile(values, q):
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


async def test_thousand_requests_with_faults_agree_with_the_simulator(sim, make_manager):
    manager = make_manager({name: {"model": model} for name, model in MODELS.items()},
                           fallback_chain=["primary", "backup"], retry={"max_retries": 1},
                           manager_kwargs={"circuit_breaker": {"failure_threshold": 100_000}})
    metrics, debug, exporter = MetricsCollector(), DebugLogger(max_history=N), PrometheusExporter()
    enable_monitoring(manager, metrics=metrics, debug=debug, prometheus=exporter)
    ends = []
    manager.add_observer(lambda e: ends.append(e) if e.kind == "request_end" else None)
    sim.fault("openai", Fault.unavailable(), model="model-primary", times=None, probability=0.3, seed=7)
    sim.fault("openai", Fault.rate_limited(retry_after=0), model="model-backup", times=None, probability=0.25,
              seed=11)
    semaphore = asyncio.Semaphore(32)

    async def one(i):
        async with semaphore:
            if i % 4 == 3:
                chunks = [c async for c in manager.chat_stream(f"stream {i}")]
                return "stream", chunks[-1].usage, len(chunks)
            return "chat", (await manager.chat(f"request {i}")).usage, None

    results = await asyncio.gather(*(one(i) for i in range(N)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(f, LLMError) for f in failures)
    successes = [r for r in results if not isinstance(r, BaseException)]
    streams = [r for r in successes if r[0] == "stream"]
    assert 0 < len(failures) < N / 4  # the faults did something, and fallback saved most requests

    # What the simulator received: one chat request per attempt.
    received = Counter(r.body["model"] for r in sim.requests if r.endpoint == "chat")
    calls = sum(received.values())
    assert calls > N  # retries and fallbacks happened

    # -- MetricsCollector: calls per provider/model/deployment match the simulator's records.
    for name, model in MODELS.items():
        for stats in (metrics.get_provider_stats(name), metrics.get_model_stats(model),
                      metrics.get_deployment_stats(name)):
            assert stats["total_requests"] == received[model]
            assert stats["latency"]["count"] == received[model]
    primary, backup = metrics.get_provider_stats("primary"), metrics.get_provider_stats("backup")
    assert set(primary["error_counts"]) == {"ServiceUnavailableError"}
    assert set(backup["error_counts"]) == {"RateLimitError"}
    summary = metrics.get_summary()
    assert summary["successful_requests"] == len(successes)  # exactly one successful call per successful request
    assert summary["failed_requests"] == calls - len(successes)
    assert summary["tokens"]["output"] == sum(r[1].output_tokens for r in successes)
    requests = summary["requests"]
    assert (requests["total"], requests["successful"], requests["failed"]) == (N, len(successes), len(failures))
    assert requests["stream_chunks"] == sum(r[2] for r in streams)
    assert requests["time_to_first_token"]["count"] == len(streams)
    assert requests["retries"] >= 1 and requests["fallbacks"] >= 1
    stats = manager.get_stats()
    assert (stats["requests"], stats["successes"], stats["failures"]) == (N, len(successes), len(failures))
    # The latency sketch agrees with the exact latencies the manager reported, within its 1% bound.
    latencies = [e.latency for e in ends]
    for q in (0.5, 0.95, 0.99):
        truth = exact_quantile(latencies, q)
        assert requests["latency"][f"p{round(q * 100)}"] == pytest.approx(truth, rel=0.01)

    # -- Prometheus: attempt counters and histograms say the same.
    attempts = Counter()
    outcomes = Counter()
    for labels, value in samples(exporter, "spoon_llm_attempts_total"):
        attempts[labels["model"]] += value
        outcomes[labels["outcome"]] += value
    assert attempts == received
    assert outcomes["success"] == len(successes)
    assert outcomes["ServiceUnavailableError"] == primary["failed_requests"]
    assert outcomes["RateLimitError"] == backup["failed_requests"]
    by_status = Counter()
    for labels, value in samples(exporter, "spoon_llm_requests_total"):
        by_status[labels["status"]] += value
    assert by_status == {"success": len(successes), "error": len(failures)}
    assert sum(v for _, v in samples(exporter, "spoon_llm_request_duration_seconds_count")) == N
    attempt_counts = Counter()
    for labels, value in samples(exporter, "spoon_llm_attempt_duration_seconds_count"):
        attempt_counts[labels["model"]] += value
    assert attempt_counts == received
    assert sum(v for _, v in samples(exporter, "spoon_llm_time_to_first_token_seconds_count")) == len(streams)
    assert sum(v for _, v in samples(exporter, "spoon_llm_stream_chunks_total")) == requests["stream_chunks"]
    assert [v for _, v in samples(exporter, "spoon_llm_requests_in_flight")] == [0.0]

    # -- Debug history: every request, streams included, finished with its attempts.
    history = debug.get_request_history()
    assert len(history) == N and debug.get_active_requests() == []
    assert Counter(h["status"] for h in history) == {"success": len(successes), "error": len(failures)}
    assert sum(h["attempts"] for h in history) == calls
    assert sum(h["retries"] for h in history) == requests["retries"]
    assert sum(len(h["fallbacks"]) for h in history) == requests["fallbacks"]
    done_streams = [h for h in history if h["method"] == "chat_stream" and h["status"] == "success"]
    assert len(done_streams) == len(streams)
    assert sorted(h["chunk_count"] for h in done_streams) == sorted(r[2] for r in streams)
    assert all(h["time_to_first_token"] is not None for h in done_streams)
    served = Counter(h["model"] for h in history if h["status"] == "success")
    assert served["model-primary"] + served["model-backup"] == len(successes)
