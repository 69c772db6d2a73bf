"""Disconnects, saturation, operational routes and start-up rules of a live gateway."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from spoon_llm.config import ConfigurationManager
from spoon_llm.errors import ConfigurationError
from spoon_llm.testing import Fault, ProviderSimulator, Reply

from .conftest import MASTER_KEY, Gateway, gateway_config, start_gateway, stop_gateway

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HI = [{"role": "user", "content": "hi"}]


def wait_for(condition: object, timeout: float = 10.0) -> float:
    """Poll ``condition()`` until true; returns the seconds it took (fails the test on timeout)."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
    return time.monotonic() - started


def cancelled_count(gateway: Gateway, route: str) -> int:
    total = 0
    for line in gateway.metrics().splitlines():
        if line.startswith("spoon_gateway_cancelled_total{") and f'route="{route}"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_client_leaving_a_stream_closes_the_upstream_and_counts_as_cancelled(
        gateway: Gateway, slow_sim: ProviderSimulator) -> None:
    slow_sim.script("openai", Reply(text=" ".join(f"word{i}" for i in range(200))))
    slow_sim.fault("openai", Fault.slow_stream(0.2), times=None)
    before = cancelled_count(gateway, "chat")
    with httpx2.stream("POST", gateway.url + "/v1/chat/completions", headers=AUTH, timeout=10, json={
            "model": "slow-model", "stream": True, "messages": HI}) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        assert slow_sim.open_connections == 1  # the upstream stream is running
    # The client is gone: the gateway must close its upstream connection and count the request as cancelled.
    wait_for(lambda: slow_sim.open_connections == 0)
    wait_for(lambda: cancelled_count(gateway, "chat") == before + 1)
    assert len(slow_sim.requests) == 1


def test_client_leaving_a_slow_answer_closes_the_upstream(gateway: Gateway, slow_sim: ProviderSimulator) -> None:
    slow_sim.fault("openai", Fault.slow(30), times=None)
    before = cancelled_count(gateway, "messages")
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(gateway.url + "/v1/messages", headers={"x-api-key": MASTER_KEY}, timeout=httpx2.Timeout(
            10, read=0.5), json={"model": "slow-model", "max_tokens": 10, "messages": HI})
    assert len(slow_sim.requests) == 1
    wait_for(lambda: slow_sim.open_connections == 0)
    wait_for(lambda: cancelled_count(gateway, "messages") == before + 1)
    wait_for(lambda: any(json.loads(x)["outcome"] == "cancelled" and json.loads(x)["route"] == "messages"
                         for x in gateway.access_log()))


def test_health_ready_and_metrics(gateway: Gateway, sim: ProviderSimulator) -> None:
    health = httpx2.get(gateway.url + "/health", timeout=5)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = httpx2.get(gateway.url + "/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert "openai" in ready.json()["deployments"]
    httpx2.post(gateway.url + "/v1/chat/completions", headers=AUTH, json={"model": "fast", "messages": HI},
                timeout=10).raise_for_status()
    assert httpx2.get(gateway.url + "/metrics", timeout=5).status_code == 401
    text = gateway.metrics()
    assert re.search(r'spoon_gateway_requests_total\{route="chat",status="200",key_alias="master",model="fast",'
                     r'provider="openai"\} \d+', text)
    assert "spoon_gateway_in_flight" in text
    # The library's series of what happens inside requests (attempts per deployment), from the same endpoint.
    assert re.search(r'spoon_llm_attempts_total\{deployment="openai",model="gpt-4o-mini",outcome="success",'
                     r'provider="openai"\} \d+', text)
    assert MASTER_KEY not in text


def library_series(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of one series in a /metrics answer whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def test_metrics_count_every_attempt_and_token_of_the_answers_already_sent(gateway: Gateway,
                                                                           sim: ProviderSimulator) -> None:
    # Scraped right after each answer: the attempt series already hold it, exactly once.
    series = {"deployment": "openai", "model": "gpt-4o-mini", "provider": "openai"}
    before = gateway.metrics()
    attempts = library_series(before, "spoon_llm_attempts_total", outcome="success", **series)
    output = library_series(before, "spoon_llm_tokens_total", provider="openai", model="gpt-4o-mini", type="output")
    durations = library_series(before, "spoon_llm_attempt_duration_seconds_count", **series)
    sent = 0
    for number in range(1, 4):
        answer = httpx2.post(gateway.url + "/v1/chat/completions", headers=AUTH, timeout=10,
                             json={"model": "gpt-4o-mini", "messages": HI})
        answer.raise_for_status()
        sent += answer.json()["usage"]["completion_tokens"]
        text = gateway.metrics()
        assert library_series(text, "spoon_llm_attempts_total", outcome="success", **series) == attempts + number
        assert library_series(text, "spoon_llm_attempt_duration_seconds_count", **series) == durations + number
        assert library_series(text, "spoon_llm_tokens_total", provider="openai", model="gpt-4o-mini",
                              type="output") == output + sent


def test_access_log_names_the_key_alias_never_the_key(gateway: Gateway, sim: ProviderSimulator) -> None:
    httpx2.post(gateway.url + "/v1/chat/completions", headers=AUTH, timeout=10,
                json={"model": "openai/gpt-4o", "messages": HI}).raise_for_status()  # a name no other test uses
    wait_for(lambda: any('"model":"openai/gpt-4o"' in line for line in gateway.access_log()))
    entry = next(json.loads(x) for x in reversed(gateway.access_log()) if '"model":"openai/gpt-4o"' in x)
    assert entry["key_alias"] == "master" and entry["status"] == 200 and entry["provider"] == "openai"
    assert entry["input_tokens"] > 0 and entry["latency_ms"] > 0
    assert list(entry) == ["ts", "request_id", "method", "route", "status", "key_alias", "model", "provider",
                           "latency_ms", "input_tokens", "output_tokens", "cost_usd", "outcome", "client", "attempts"]
    assert entry["attempts"] == "openai:ok" and entry["outcome"] == "ok" and entry["route"] == "chat"
    assert MASTER_KEY not in (gateway.state_dir / "access.log").read_text()


@pytest.fixture(scope="module")
def small_gateway(simulators: tuple[ProviderSimulator, ProviderSimulator],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway that serves two requests at once and queues none."""
    sim, slow = simulators
    state_dir = tmp_path_factory.mktemp("small-gateway")
    running = start_gateway(gateway_config(sim, slow, state_dir, master_key=MASTER_KEY, max_inflight=2,
                                           max_queue=0, retry_after=3), state_dir)
    yield running
    stop_gateway(running)


async def test_saturation_answers_503_with_retry_after_and_health_stays_up(
        small_gateway: Gateway, slow_sim: ProviderSimulator) -> None:
    slow_sim.fault("openai", Fault.slow(3), times=2)
    async with httpx2.AsyncClient(base_url=small_gateway.url, headers=AUTH, timeout=20) as client:
        busy = [asyncio.ensure_future(client.post("/v1/chat/completions", json={
            "model": "slow-model", "messages": HI})) for _ in range(2)]
        await asyncio.get_running_loop().run_in_executor(None, wait_for, lambda: len(slow_sim.requests) == 2)
        refused = await client.post("/v1/chat/completions", json={"model": "slow-model", "messages": HI})
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "3"
        assert refused.json()["error"]["code"] == "server_busy"
        started = time.monotonic()
        health = await client.get("/health")
        health_seconds = time.monotonic() - started
        assert health.status_code == 200
        assert health_seconds < 2.0  # answered at once, not after the slow requests (they take 3 s)
        assert all(r.status_code == 200 for r in await asyncio.gather(*busy))
    assert "spoon_gateway_rejected_total 1" in small_gateway.metrics()


def test_graceful_shutdown_finishes_requests_in_flight(slow_sim: ProviderSimulator,
                                                       simulators: tuple[ProviderSimulator, ProviderSimulator],
                                                       tmp_path: Path) -> None:
    sim, slow = simulators
    gateway = start_gateway(gateway_config(sim, slow, tmp_path, master_key=MASTER_KEY), tmp_path)
    slow_sim.fault("openai", Fault.slow(1.5), times=1)
    result: list[httpx2.Response] = []

    def call() -> None:
        result.append(httpx2.post(gateway.url + "/v1/chat/completions", headers=AUTH, timeout=20,
                                  json={"model": "slow-model", "messages": HI}))

    worker = threading.Thread(target=call)
    worker.start()
    wait_for(lambda: len(slow_sim.requests) == 1)
    gateway.process.terminate()  # SIGTERM: stop accepting, drain what is in flight
    worker.join(timeout=20)
    assert gateway.process.wait(timeout=20) in (0, -15)  # uvicorn re-raises the signal once it has drained
    assert result and result[0].status_code == 200
    assert result[0].json()["choices"][0]["message"]["content"]


def test_refuses_to_bind_beyond_loopback_without_a_master_key(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[providers.openai]\napi_key = "sk-sim-0123456789"\n')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "spoon_llm", "serve", "--config", str(path), "--host", "0.0.0.0",
                           "--port", "1"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "refusing to listen on '0.0.0.0' without a master key" in done.stderr


def test_server_section_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ConfigurationManager({"server": {"max_inflght": 3}})
    assert "server.max_inflght" in str(caught.value)
    settings = ConfigurationManager({"server": {"master_key": "sk-master-abcdef0123", "max_inflight": 3}})
    assert settings.config.server.max_inflight == 3
    assert "sk-master-abcdef0123" not in repr(settings.config.server)


def test_cors_preflight_and_allowed_origin(simulators: tuple[ProviderSimulator, ProviderSimulator],
                                           tmp_path: Path) -> None:
    sim, slow = simulators
    gateway = start_gateway(gateway_config(sim, slow, tmp_path, master_key=MASTER_KEY,
                                           cors_origins=["https://chat.example.com"]), tmp_path)
    try:
        preflight = httpx2.options(gateway.url + "/v1/chat/completions", timeout=5, headers={
            "origin": "https://chat.example.com", "access-control-request-method": "POST"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://chat.example.com"
        assert "authorization" in preflight.headers["access-control-allow-headers"]
        other = httpx2.options(gateway.url + "/v1/chat/completions", timeout=5,
                               headers={"origin": "https://evil.example.com"})
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
        answer = httpx2.post(gateway.url + "/v1/chat/completions", timeout=10,
                             headers={**AUTH, "origin": "https://chat.example.com"},
                             json={"model": "fast", "messages": HI})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://chat.example.com"
    finally:
        stop_gateway(gateway)


def test_several_workers_serve_from_the_same_file(simulators: tuple[ProviderSimulator, ProviderSimulator],
                                                  tmp_path: Path) -> None:
    sim, slow = simulators
    gateway = start_gateway(gateway_config(sim, slow, tmp_path, master_key=MASTER_KEY), tmp_path, "--workers", "2")
    try:
        for _ in range(4):
            answer = httpx2.post(gateway.url + "/v1/chat/completions", headers=AUTH, timeout=10,
                                 json={"model": "fast", "messages": HI})
            assert answer.status_code == 200
        assert "2 workers" in (tmp_path / "gateway.stderr").read_text()
    finally:
        stop_gateway(gateway)


_GC_PROBE = """
import asyncio, gc, sys
from spoon_llm.server.app import GC_GEN0_THRESHOLD, create_app

async def main(tune):
    app = create_app({"providers": {"openai": {"api_key": "sk-sim-0123456789"}}, "state": {"path": sys.argv[2]}})
    app.tune_gc = tune
    await app.startup()
    await app.shutdown()
    print(gc.get_threshold()[0] == GC_GEN0_THRESHOLD, gc.get_freeze_count() > 0)

asyncio.run(main(sys.argv[1] == "tune"))
"""


@pytest.mark.parametrize(("mode", "expected"), [("tune", "True True"), ("embedded", "False False")])
def test_the_serving_process_tunes_the_collector_and_an_embedding_program_keeps_its_own(
        tmp_path: Path, mode: str, expected: str) -> None:
    # In a subprocess: freezing the collector's generations is process-wide.
    done = subprocess.run([sys.executable, "-c", _GC_PROBE, mode, str(tmp_path / "state.db")], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
