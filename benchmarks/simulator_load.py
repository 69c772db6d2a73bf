"""Load test of the provider simulator: how many requests/s can it answer?

The simulator runs in its own process (``python -m spoon_llm.testing``); one or more client
processes drive it over many keep-alive connections with a lean raw-asyncio HTTP client (a
pre-built request, a minimal response scanner), so the client costs far less per request than
the server. Reports wall-clock requests/s and the server's own CPU time per request, which gives
the rate one server core sustains (``req/s per server core``).

    python benchmarks/simulator_load.py                       # 64 connections, 5 s
    python benchmarks/simulator_load.py -c 128 -d 10 --procs 2 --pipeline 4
    python benchmarks/simulator_load.py --vendor anthropic --stream
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import SimulatorProcess, start_simulator  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say hello to the benchmark."}]


def build_request(vendor: str, port: int, stream: bool) -> bytes:
    """A complete HTTP/1.1 request for one chat call, built once and sent many times."""
    if vendor == "anthropic":
        path = "/v1/messages"
        body: dict[str, object] = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": MESSAGES}
        extra = "x-api-key: sk-ant-bench\r\nanthropic-version: 2023-06-01\r\n"
    elif vendor == "gemini":
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path = f"/v1beta/models/gemini-2.5-flash:{method}"
        body = {"contents": [{"role": "user", "parts": [{"text": MESSAGES[0]["content"]}]}]}
        extra = "x-goog-api-key: bench-key\r\n"
    else:
        path = "/v1/chat/completions"
        body = {"model": "gpt-4o-mini", "messages": MESSAGES}
        extra = "authorization: Bearer sk-bench\r\n"
    if stream and vendor != "gemini":
        body["stream"] = True
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"{extra}content-length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class _Conn(asyncio.Protocol):
    """One keep-alive connection that keeps ``depth`` requests in flight until the deadline."""

    def __init__(self, request: bytes, depth: int, deadline: float, done: asyncio.Future[int]) -> None:
        self.request = request
        self.depth = depth
        self.deadline = deadline
        self.done = done
        self.buf = bytearray()
        self.count = 0
        self.inflight = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.inflight = self.depth
        transport.write(self.request * self.depth)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        finished = 0
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(buf[:end]).lower()
            pos = head.find(b"content-length: ")
            if pos >= 0:
                stop = head.find(b"\r\n", pos)
                length = int(head[pos + 16 : stop if stop > 0 else len(head)])
                total = end + 4 + length
                if len(buf) < total:
                    break
            else:  # chunked: the simulator ends every stream with the zero-length chunk
                last = buf.find(b"\r\n0\r\n\r\n", end)
                if last < 0:
                    break
                total = last + 7
            del buf[:total]
            finished += 1
        if not finished:
            return
        self.count += finished
        self.inflight -= finished
        assert self.transport is not None
        if time.perf_counter() < self.deadline:
            self.inflight += finished
            self.transport.write(self.request * finished)
        elif self.inflight == 0:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.count)


async def _drive(port: int, request: bytes, connections: int, depth: int, seconds: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = time.perf_counter() + seconds
    futures = []
    for _ in range(connections):
        fut: asyncio.Future[int] = loop.create_future()
        await loop.create_connection(partial(_Conn, request, depth, deadline, fut), "127.0.0.1", port)
        futures.append(fut)
    counts = await asyncio.gather(*futures)
    return sum(counts)


def _client_process(port: int, request: bytes, connections: int, depth: int, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    out.put(asyncio.run(_drive(port, request, connections, depth, seconds)))


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (Linux); 0.0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _pinned(cpus: set[int] | None) -> Iterator[None]:
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run(
    *,
    vendor: str = "openai",
    stream: bool = False,
    connections: int = 64,
    procs: int = 1,
    depth: int = 1,
    seconds: float = 5.0,
    warmup: float = 1.0,
    sim: SimulatorProcess | None = None,
) -> dict[str, float]:
    """Drive a simulator (started here unless given) and return the measured figures."""
    with start_simulator() if sim is None else _nullcontext(sim) as server:
        request = build_request(vendor, server.port, stream)
        ctx: Any = mp.get_context("fork" if sys.platform != "win32" else "spawn")
        per_proc = max(1, connections // procs)
        if warmup > 0:
            asyncio.run(_drive(server.port, request, min(per_proc, 16), depth, warmup))
        cpu_before = _cpu_seconds(server.pid)
        queue: mp.Queue[int] = ctx.Queue()
        workers = [
            ctx.Process(target=_client_process, args=(server.port, request, per_proc, depth, seconds, queue))
            for _ in range(procs)
        ]
        start = time.perf_counter()
        for w in workers:
            w.start()
        total = sum(queue.get() for _ in workers)
        wall = time.perf_counter() - start
        for w in workers:
            w.join()
        server_cpu = _cpu_seconds(server.pid) - cpu_before
    return {
        "requests": float(total),
        "wall_s": wall,
        "rps": total / wall,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_req": server_cpu / total * 1e6 if total else 0.0,
        "rps_per_server_core": total / server_cpu if server_cpu else 0.0,
    }


@contextmanager
def _nullcontext(value: SimulatorProcess) -> Iterator[SimulatorProcess]:
    yield value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vendor", choices=("openai", "anthropic", "gemini"), default="openai")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("--procs", type=int, default=1, help="client processes")
    parser.add_argument("--pipeline", type=int, default=1, help="requests in flight per connection")
    parser.add_argument("-d", "--duration", type=float, default=5.0, help="seconds of measurement")
    args = parser.parse_args(argv)
    result = run(
        vendor=args.vendor,
        stream=args.stream,
        connections=args.connections,
        procs=args.procs,
        depth=args.pipeline,
        seconds=args.duration,
    )
    print(
        f"{args.vendor}{' stream' if args.stream else ''}: {int(result['requests'])} requests in "
        f"{result['wall_s']:.2f} s over {args.connections} connections x{args.pipeline} "
        f"({args.procs} client process{'es' if args.procs > 1 else ''})"
    )
    print(f"  throughput           {result['rps']:,.0f} req/s")
    print(f"  server CPU/request   {result['server_cpu_us_per_req']:,.1f} us")
    print(f"  per server core      {result['rps_per_server_core']:,.0f} req/s")


if __name__ == "__main__":
    main()
