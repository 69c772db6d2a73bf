"""Benchmark harness: the one way every performance figure of spoon-llm is measured.

A *client* is an async context manager factory: given the :class:`Target` (simulator URLs,
model, messages, stream flag) it sets a client up, yields a zero-argument coroutine function
that performs one request (reading the whole answer, stream included), and tears down on exit.
The harness runs it ``n`` times at concurrency ``C`` against a provider simulator running in a
separate process, after a warm-up, and reports:

* requests/s (wall clock),
* client CPU-us per request (``time.process_time`` of the client process over the measured
  interval, divided by ``n``) and CPU utilisation,
* p50 / p99 latency, peak RSS of the client process, errors,
* ratios to a baseline client (CPU per request and requests/s) at the same concurrency.

Each (client, concurrency) pair runs in a fresh forked process (where ``fork`` exists) so that
imports, CPU and peak RSS of one client do not leak into another's figures.

CLI::

    python benchmarks/harness.py --clients raw_httpx2,openai_sdk -n 2000 -c 1,64 --stream
    python benchmarks/harness.py --clients raw_httpx2,mypkg.bench:my_client   # module:attr factories

Python::

    from harness import run_benchmark, CLIENTS
    results = run_benchmark({"raw": CLIENTS["raw_httpx2"], "mine": my_factory}, n=2000, concurrency=[1, 64])
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import multiprocessing as mp
import os
import select
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing: the simulator is part of it
    sys.path.insert(0, str(REPO_ROOT))

from spoon_llm.testing import VendorURLs  # noqa: E402

RequestFn = Callable[[], Awaitable[object]]
ClientFactory = Callable[["Target"], AbstractAsyncContextManager[RequestFn]]

DEFAULT_MESSAGES: tuple[dict[str, str], ...] = ({"role": "user", "content": "Write one sentence about benchmarks."},)


def spoon_requests(target: Target, chatter: Any, messages: Sequence[Any] | None = None, **kwargs: Any) -> RequestFn:
    """The request function for a spoon-llm provider or manager: one ``chat``, or one whole ``chat_stream``."""
    conversation = list(target.messages if messages is None else messages)

    async def call() -> object:
        return await chatter.chat(conversation, **kwargs)

    async def call_stream() -> object:
        return [chunk async for chunk in chatter.chat_stream(conversation, **kwargs)]

    return call_stream if target.stream else call



# --------------------------------------------------------------------------------------------
# The simulator process


@dataclass
class SimulatorProcess:
    """Simulator server process(es) started by the harness, and their address."""

    port: int
    pids: list[int]
    host: str = "127.0.0.1"

    @property
    def pid(self) -> int:
        """Pid of the first (or only) server process."""
        return self.pids[0]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"


def _spawn(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "spoon_llm.testing", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO_ROOT),
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if "listening on" in line:
                return proc, int(line.rsplit(":", 1)[1])
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("the simulator process did not start (is httptools installed?)")


@contextlib.contextmanager
def start_simulator(workers: int = 1, cpus: set[int] | None = None) -> Iterator[SimulatorProcess]:
    """Run the simulator in separate process(es) for the duration of the ``with`` block.

    ``workers > 1`` starts several processes sharing one port (SO_REUSEPORT, Linux);
    ``cpus`` pins them to those CPUs.
    """
    procs: list[subprocess.Popen[str]] = []
    try:
        reuse = ["--reuse-port"] if workers > 1 else []
        first, port = _spawn(["--port", "0", *reuse])
        procs.append(first)
        for _ in range(workers - 1):
            procs.append(_spawn(["--port", str(port), *reuse])[0])
        if cpus and hasattr(os, "sched_setaffinity"):
            for proc in procs:
                os.sched_setaffinity(proc.pid, cpus)
        yield SimulatorProcess(port=port, pids=[p.pid for p in procs])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


# --------------------------------------------------------------------------------------------
# Clients


@dataclass(frozen=True)
class Target(VendorURLs):
    """What a client talks to and asks for."""

    base_url: str
    stream: bool = False
    model: str = ""
    messages: tuple[dict[str, str], ...] = DEFAULT_MESSAGES
    max_tokens: int = 256

    def model_or(self, default: str) -> str:
        """The requested model, or a vendor default."""
        return self.model or default


@contextlib.asynccontextmanager
async def raw_httpx2(target: Target) -> AsyncIterator[RequestFn]:
    """Baseline: httpx2 POST to /v1/chat/completions and ``json.loads`` (SSE: read every line)."""
    import httpx2

    limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)
    client = httpx2.AsyncClient(base_url=target.openai_base_url, limits=limits, timeout=60)
    headers = {"authorization": "Bearer sk-bench"}
    payload: dict[str, Any] = {"model": target.model_or("gpt-4o-mini"), "messages": list(target.messages)}

    async def call() -> object:
        response = await client.post("/chat/completions", json=payload, headers=headers)
        response.raise_for_status()
        return json.loads(response.content)

    async def call_stream() -> object:
        body = dict(payload, stream=True)
        parts = []
        async with client.stream("POST", "/chat/completions", json=body, headers=headers) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    parts.append(json.loads(line[6:]))
        return parts

    try:
        yield call_stream if target.stream else call
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def openai_sdk(target: Target) -> AsyncIterator[RequestFn]:
    """The official ``openai`` SDK (``AsyncOpenAI``, ``max_retries=0``)."""
    import openai

    client = openai.AsyncOpenAI(base_url=target.openai_base_url, api_key="sk-bench", max_retries=0)
    model = target.model_or("gpt-4o-mini")
    messages: Any = list(target.messages)

    async def call() -> object:
        return await client.chat.completions.create(model=model, messages=messages)

    async def call_stream() -> object:
        stream = await client.chat.completions.create(model=model, messages=messages, stream=True)
        return [chunk async for chunk in stream]

    try:
        yield call_stream if target.stream else call
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def anthropic_sdk(target: Target) -> AsyncIterator[RequestFn]:
    """The official ``anthropic`` SDK (``AsyncAnthropic``, ``max_retries=0``)."""
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=target.anthropic_base_url, api_key="sk-ant-bench", max_retries=0)
    model = target.model_or("claude-sonnet-4-6")
    messages: Any = list(target.messages)

    async def call() -> object:
        return await client.messages.create(model=model, max_tokens=target.max_tokens, messages=messages)

    async def call_stream() -> object:
        stream = await client.messages.create(model=model, max_tokens=target.max_tokens, messages=messages, stream=True)
        return [event async for event in stream]

    try:
        yield call_stream if target.stream else call
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def gemini_sdk(target: Target) -> AsyncIterator[RequestFn]:
    """The official ``google-genai`` SDK (``Client(...).aio``)."""
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="bench-key", http_options=types.HttpOptions(base_url=target.gemini_base_url))
    model = target.model_or("gemini-2.5-flash")
    contents = " ".join(m["content"] for m in target.messages if m.get("role") == "user")

    async def call() -> object:
        return await client.aio.models.generate_content(model=model, contents=contents)

    async def call_stream() -> object:
        return [
            chunk async for chunk in await client.aio.models.generate_content_stream(model=model, contents=contents)
        ]

    try:
        yield call_stream if target.stream else call
    finally:
        await client.aio.aclose()


CLIENTS: dict[str, ClientFactory] = {
    "raw_httpx2": raw_httpx2,
    "openai_sdk": openai_sdk,
    "anthropic_sdk": anthropic_sdk,
    "gemini_sdk": gemini_sdk,
}


def resolve_client(name: str) -> ClientFactory:
    """A built-in client name, or ``package.module:attribute`` naming a factory."""
    if name in CLIENTS:
        return CLIENTS[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        factory: ClientFactory = getattr(importlib.import_module(module), attr)
        return factory
    raise SystemExit(f"unknown client {name!r}; built-in: {', '.join(CLIENTS)} (or module:attr)")


# --------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Result:
    """Figures for one client at one concurrency."""

    client: str
    concurrency: int
    n: int
    stream: bool
    wall_s: float = 0.0
    rps: float = 0.0
    cpu_us_per_req: float = 0.0
    cpu_util: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    peak_rss_mb: float = 0.0
    errors: int = 0
    first_error: str | None = None
    ratios: dict[str, float] = field(default_factory=dict)


def _peak_rss_mb() -> float:
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


async def _drive(call: RequestFn, n: int, concurrency: int, latencies: list[float] | None) -> tuple[int, str | None]:
    remaining = n
    errors = 0
    first_error: str | None = None
    clock = time.perf_counter

    async def worker() -> None:
        nonlocal remaining, errors, first_error
        while remaining > 0:
            remaining -= 1
            start = clock()
            try:
                await call()
            except Exception as exc:  # a benchmark reports failures, it does not stop on them
                errors += 1
                if first_error is None:
                    first_error = f"{type(exc).__name__}: {exc}"
            if latencies is not None:
                latencies.append(clock() - start)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
    return errors, first_error


async def _measure(name: str, factory: ClientFactory, target: Target, n: int, concurrency: int, warmup: int) -> Result:
    result = Result(client=name, concurrency=concurrency, n=n, stream=target.stream)
    latencies: list[float] = []
    async with factory(target) as call:
        if warmup:
            await _drive(call, warmup, concurrency, None)
        gc.collect()
        cpu0, t0 = time.process_time(), time.perf_counter()
        result.errors, result.first_error = await _drive(call, n, concurrency, latencies)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    result.wall_s = wall
    result.rps = n / wall if wall else 0.0
    result.cpu_us_per_req = cpu / n * 1e6
    result.cpu_util = cpu / wall if wall else 0.0
    latencies.sort()
    if latencies:
        result.p50_ms = statistics.median(latencies) * 1e3
        result.p99_ms = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3
    result.peak_rss_mb = _peak_rss_mb()
    return result


def _measure_in_child(
    conn: Any, name: str, factory: ClientFactory, target: Target, n: int, c: int, warmup: int
) -> None:
    try:
        conn.send(("ok", asdict(asyncio.run(_measure(name, factory, target, n, c, warmup)))))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _measure_isolated(name: str, factory: ClientFactory, target: Target, n: int, c: int, warmup: int) -> Result:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_measure_in_child, args=(child, name, factory, target, n, c, warmup))
    proc.start()
    child.close()
    status, payload = parent.recv()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"client {name!r} failed:\n{payload}")
    return Result(**payload)


def run_benchmark(
    clients: Mapping[str, ClientFactory],
    n: int = 2000,
    concurrency: int | Sequence[int] = (1, 64),
    *,
    stream: bool = False,
    warmup: int | None = None,
    baseline: str | None = None,
    model: str = "",
    messages: Sequence[dict[str, str]] = DEFAULT_MESSAGES,
    isolate: bool = True,
    simulator: SimulatorProcess | None = None,
    sim_workers: int = 1,
    sim_cpus: set[int] | None = None,
    report: Callable[[str], object] | None = print,
) -> list[Result]:
    """Benchmark ``clients`` side by side against a simulator in a separate process.

    ``warmup`` defaults to ``min(200, n // 5)`` requests (same concurrency, not measured);
    ``baseline`` (default: the first client) is what ratios compare to; ``isolate`` runs every
    (client, concurrency) pair in a forked process (falls back to in-process without fork).
    Pass ``simulator`` to reuse a running one; ``report=None`` silences the table.
    """
    levels = [concurrency] if isinstance(concurrency, int) else list(concurrency)
    warm = min(200, n // 5) if warmup is None else warmup
    base = baseline or next(iter(clients))
    use_fork = isolate and "fork" in mp.get_all_start_methods()
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        sim = simulator or stack.enter_context(start_simulator(sim_workers, sim_cpus))
        target = Target(base_url=sim.base_url, stream=stream, model=model, messages=tuple(messages))
        for c in levels:
            for name, factory in clients.items():
                if use_fork:
                    result = _measure_isolated(name, factory, target, n, c, warm)
                else:
                    result = asyncio.run(_measure(name, factory, target, n, c, warm))
                results.append(result)
    by_key = {(r.client, r.concurrency): r for r in results}
    for r in results:
        ref = by_key.get((base, r.concurrency))
        if ref is not None and ref.cpu_us_per_req and ref.rps:
            r.ratios = {"cpu_per_req": r.cpu_us_per_req / ref.cpu_us_per_req, "rps": r.rps / ref.rps}
    if report is not None:
        report(format_table(results, base))
    return results


async def _interleave(clients: Mapping[str, ClientFactory], target: Target, n: int, concurrency: int, rounds: int,
                      warmup: int) -> dict[str, list[float]]:
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    async with contextlib.AsyncExitStack() as stack:
        calls = {name: await stack.enter_async_context(factory(target)) for name, factory in clients.items()}
        for call in calls.values():
            await _drive(call, warmup, concurrency, None)
        names = list(calls)
        for index in range(rounds):
            for name in names if index % 2 == 0 else reversed(names):  # neither always goes first
                gc.collect()
                started = time.process_time()
                await _drive(calls[name], n, concurrency, None)
                cpu[name].append((time.process_time() - started) / n * 1e6)
    return cpu


def run_interleaved(
    clients: Mapping[str, ClientFactory],
    n: int = 2000,
    concurrency: int | Sequence[int] = (1, 64),
    *,
    rounds: int = 8,
    stream: bool = False,
    warmup: int = 500,
    simulator: SimulatorProcess | None = None,
) -> dict[tuple[str, int], list[float]]:
    """CPU-us per request of ``clients`` in alternating rounds of ``n`` requests, all in one process.

    Side-by-side runs in separate processes (:func:`run_benchmark`) are right for absolute figures, but a ratio
    of a few percent drowns there in what differs between two runs: a full garbage collection more or less
    (tens of ms each), CPU frequency, the neighbours' load. Here every client sees the same process, heap and
    machine state, round after round; compare medians. Returns ``{(client, concurrency): [us per round]}``.
    """
    levels = [concurrency] if isinstance(concurrency, int) else list(concurrency)
    out: dict[tuple[str, int], list[float]] = {}
    with contextlib.ExitStack() as stack:
        sim = simulator or stack.enter_context(start_simulator())
        target = Target(base_url=sim.base_url, stream=stream)
        for c in levels:
            for name, values in asyncio.run(_interleave(clients, target, n, c, rounds, warmup)).items():
                out[(name, c)] = values
    return out


def format_table(results: Sequence[Result], baseline: str) -> str:
    """Render results as a fixed-width table with ratios to ``baseline``."""
    head = (
        f"{'client':<16}{'conc':>5}{'req/s':>10}{'cpu-us/req':>12}{'cpu%':>7}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'RSS MB':>8}{'errors':>8}   vs {baseline} (cpu/req, req/s)"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        ratio = ""
        if r.ratios and r.client != baseline:
            ratio = f"x{r.ratios['cpu_per_req']:.2f}, x{r.ratios['rps']:.2f}"
        lines.append(
            f"{r.client:<16}{r.concurrency:>5}{r.rps:>10,.0f}{r.cpu_us_per_req:>12,.0f}{r.cpu_util * 100:>6.0f}%"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.peak_rss_mb:>8.0f}{r.errors:>8}   {ratio}"
        )
        if r.first_error:
            lines.append(f"    first error: {r.first_error[:200]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="raw_httpx2,openai_sdk", help="comma-separated names or module:attr")
    parser.add_argument("-n", type=int, default=2000, help="measured requests per client and concurrency")
    parser.add_argument("-c", "--concurrency", default="1,64", help="comma-separated concurrency levels")
    parser.add_argument("--stream", action="store_true", help="streamed answers, read to the end")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up requests (default min(200, n/5))")
    parser.add_argument("--baseline", default=None, help="client the ratios compare to (default: first)")
    parser.add_argument("--model", default="", help="model name to request (default: vendor default)")
    parser.add_argument("--no-isolate", action="store_true", help="run clients in this process")
    parser.add_argument("--sim-workers", type=int, default=1, help="simulator processes sharing the port")
    parser.add_argument("--pin", action="store_true", help="pin the simulator to CPU 0 and clients to the rest")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    sim_cpus = None
    if args.pin and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            sim_cpus = {cpus[0]}
            os.sched_setaffinity(0, set(cpus[1:]))
    clients = {name: resolve_client(name) for name in args.clients.split(",") if name}
    results = run_benchmark(
        clients,
        n=args.n,
        concurrency=[int(c) for c in args.concurrency.split(",")],
        stream=args.stream,
        warmup=args.warmup,
        baseline=args.baseline,
        model=args.model,
        isolate=not args.no_isolate,
        sim_workers=args.sim_workers,
        sim_cpus=sim_cpus,
    )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
