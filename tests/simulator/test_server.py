"""Lifecycle (sync, async, start/stop), HTTP/1.1 behaviour (keep-alive, pipelining) and routing."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx2
import pytest

from spoon_llm.testing import ProviderSimulator

REPO = Path(__file__).resolve().parents[2]
CHAT = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"pipelined"}]}'


def test_sync_context_manager_and_urls() -> None:
    with ProviderSimulator() as sim:
        port = sim.port
        assert sim.base_url == f"http://127.0.0.1:{port}"
        assert sim.openai_base_url == sim.base_url + "/v1"
        assert sim.anthropic_base_url == sim.base_url
        assert sim.gemini_base_url == sim.base_url
        assert sim.openrouter_base_url == sim.base_url + "/api/v1"
        assert sim.deepseek_base_url == sim.base_url
        assert httpx2.get(sim.base_url + "/health").status_code == 200
    with pytest.raises(RuntimeError):
        _ = sim.port
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"http://127.0.0.1:{port}/health")


async def test_async_context_manager_serves_in_callers_loop() -> None:
    async with ProviderSimulator() as sim:
        assert threading.active_count() >= 1
        async with httpx2.AsyncClient(base_url=sim.openai_base_url) as client:
            response = await client.post("/chat/completions", content=CHAT)
        assert response.json()["choices"][0]["message"]["content"] == "Simulated reply to: pipelined"


def test_start_stop_and_restart_errors() -> None:
    sim = ProviderSimulator().start()
    try:
        with pytest.raises(RuntimeError):
            sim.start()
        assert httpx2.get(sim.base_url + "/health").status_code == 200
    finally:
        sim.stop()
    sim.stop()  # idempotent


async def test_astart_astop_and_mixing_errors() -> None:
    sim = await ProviderSimulator().astart()
    async with httpx2.AsyncClient() as client:
        assert (await client.get(sim.base_url + "/health")).status_code == 200
    with pytest.raises(RuntimeError, match="astop"):
        sim.stop()
    await sim.astop()
    threaded = ProviderSimulator().start()
    with pytest.raises(RuntimeError, match="stop"):
        await threaded.astop()
    threaded.stop()


def test_start_failure_is_reported() -> None:
    with ProviderSimulator() as first:
        with pytest.raises(OSError):
            ProviderSimulator(port=first.port).start()


def _recv_responses(sock: socket.socket, count: int) -> bytes:
    data = b""
    while data.count(b"HTTP/1.1 200 OK") < count or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_keep_alive_and_pipelining(sim: ProviderSimulator) -> None:
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(CHAT), CHAT)
    )
    with socket.create_connection(("127.0.0.1", sim.port)) as sock:
        sock.sendall(request * 3)  # three pipelined requests in one write
        data = _recv_responses(sock, 3)
        assert data.count(b"HTTP/1.1 200 OK") == 3
        sock.sendall(request)  # the connection stays open
        assert _recv_responses(sock, 1).count(b"HTTP/1.1 200 OK") == 1
    assert sim.request_count == 4


def test_pipelining_behind_slow_answer_keeps_order(sim: ProviderSimulator) -> None:
    from spoon_llm.testing import Fault

    sim.fault("openai", Fault.slow(0.1), endpoint="model")
    requests = b"".join(b"GET /v1/models/m%d HTTP/1.1\r\nhost: x\r\n\r\n" % i for i in range(3))
    with socket.create_connection(("127.0.0.1", sim.port)) as sock:
        sock.sendall(requests)
        data = b""
        while data.count(b'"object":"model"') < 3:
            data += sock.recv(65536)
    assert data.index(b'"id":"m0"') < data.index(b'"id":"m1"') < data.index(b'"id":"m2"')


def test_connection_close_honoured(sim: ProviderSimulator) -> None:
    with socket.create_connection(("127.0.0.1", sim.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in data


def test_garbage_gets_400(sim: ProviderSimulator) -> None:
    with socket.create_connection(("127.0.0.1", sim.port)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 400")


async def test_unknown_route_and_wrong_method(sim: ProviderSimulator) -> None:
    async with httpx2.AsyncClient(base_url=sim.base_url) as client:
        missing = await client.post("/v1/nothing-here", json={})
        wrong = await client.get("/v1/chat/completions")
        not_gemini = await client.post("/v1beta/models/x:unknownMethod", json={})
    assert missing.status_code == 404
    assert wrong.status_code == 405
    assert not_gemini.status_code == 404


async def test_large_body(sim: ProviderSimulator) -> None:
    text = "word " * 200_000  # 1 MB, arrives in many reads
    async with httpx2.AsyncClient(base_url=sim.openai_base_url) as client:
        response = await client.post(
            "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": text}]}
        )
    assert response.json()["usage"]["prompt_tokens"] == 250_000


def test_module_entry_point_process() -> None:
    # ``python -m spoon_llm.testing`` is serve_forever() with a ready_callback printing the port.
    proc = subprocess.Popen(
        [sys.executable, "-m", "spoon_llm.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("spoon-llm simulator listening on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        assert httpx2.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(10) == 0  # SIGTERM is a clean shutdown
        if proc.stdout is not None:
            proc.stdout.close()


async def test_stop_with_open_stream_connection() -> None:
    from spoon_llm.testing import Fault

    sim = await ProviderSimulator().astart()
    sim.fault("openai", Fault.slow_stream(10))
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    body = b'{"model":"m","stream":true,"messages":[]}'
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.wait_for(sim.astop(), 5)  # must not wait for the 10 s stream
    assert await reader.read() is not None
    writer.close()
    await writer.wait_closed()


def test_argument_validation(sim: ProviderSimulator) -> None:
    from spoon_llm.testing import Fault

    with pytest.raises(ValueError, match="unknown vendor"):
        sim.script("openia", "typo")
    with pytest.raises(ValueError, match="unknown endpoint"):
        sim.fault("openai", Fault.server_error(), endpoint="chats")
    with pytest.raises(ValueError, match="times"):
        sim.fault("openai", Fault.server_error(), times=0)
    with pytest.raises(ValueError, match="probability"):
        sim.fault("openai", Fault.server_error(), probability=1.5)
    sim.script("vllm", "aliases are accepted")  # vLLM is served by the OpenAI routes
    assert (
        httpx2.post(sim.openai_base_url + "/chat/completions", json={"model": "m", "messages": []}).json()["choices"][
            0
        ]["message"]["content"]
        == "aliases are accepted"
    )


def test_unknown_route_has_request_id(sim: ProviderSimulator) -> None:
    response = httpx2.get(sim.base_url + "/nowhere/at/all")
    assert response.status_code == 404
    assert response.headers["x-request-id"].startswith("req_")
