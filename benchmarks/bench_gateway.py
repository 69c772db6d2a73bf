"""Gateway benchmark: CPU per request of ``spoon-llm serve`` against the floor proxy and the upstream itself.

Three targets answer the same OpenAI chat request, each in its own process, all over the same provider simulator
(its own process too):

* ``direct``: the simulator itself (what a client pays without any proxy),
* ``floor``: ``floor_proxy.py`` (raw ASGI + uvicorn + aiohttp + orjson: the least a Python proxy can do),
* ``gateway``: ``spoon-llm serve`` with the master key checked, the default accounting (costs), metrics and the
  JSON access log on, and memory state (``--state redis`` with ``--redis-url`` for Redis state),

For each (stream, concurrency) the targets run in interleaved rounds (``direct, floor, gateway, direct, ...``) so
that drift of a busy machine hits all of them alike. Reported per target: requests/s, p50/p99 latency, and the CPU
the target's whole process tree spent per request (``/proc/<pid>/task/*/schedstat``, nanoseconds), the headline
figure. Targets: gateway CPU per request <= 1.5x the floor's (memory state), added p50 <= 0.35 ms at c=1.

    python benchmarks/bench_gateway.py -n 2000 -c 1,64 --rounds 3
    python benchmarks/bench_gateway.py -n 2000 -c 1,64 --rounds 3 --stream

LiteLLM Proxy side by side (optional): install it into a virtual environment of its own, so its dependencies
never meet ours, and point ``--litellm`` at that environment's ``litellm`` executable; it runs as a fourth target
(master key, no database, one worker, the same upstream), and the table gains its CPU per request against ours::

    python -m venv .litellm-venv && .litellm-venv/bin/pip install 'litellm[proxy]'
    python benchmarks/bench_gateway.py -n 500 -c 1,64 --rounds 3 --litellm .litellm-venv/bin/litellm
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO_ROOT, start_simulator  # noqa: E402

MASTER_KEY = "sk-bench-master-0123456789"
MESSAGES = [{"role": "user", "content": "Write one sentence about benchmarks."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, ()))
    return tree


def tree_cpu_ns(pid: int) -> int:
    """CPU time (ns) of ``pid`` and every descendant, summed over their threads."""
    total = 0
    for current in process_tree(pid):
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError):
                continue
    return total


def wait_healthy(url: str, process: subprocess.Popen[bytes] | None, timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy")


@contextmanager
def spawn(args: list[str], health: str, env: dict[str, str] | None = None, cwd: str | None = None,
          timeout: float = 60.0) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    try:
        wait_healthy(health, process, timeout)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gateway_config(upstream: str, workdir: Path, state: str, redis_url: str | None, metrics: bool = True,
                   access_log: bool = True) -> Path:
    state_lines = f'backend = "redis"\nurl = "{redis_url}"\n' if state == "redis" else 'backend = "memory"\n'
    path = workdir / "gateway.toml"
    path.write_text(f"""
default_provider = "openai"
[state]
{state_lines}
[providers.openai]
api_key = "bench-upstream-key"
base_url = "{upstream}"
model = "gpt-4o-mini"
[server]
master_key = "{MASTER_KEY}"
access_log_path = "{workdir / 'access.log'}"
access_log = {str(access_log).lower()}
metrics = {str(metrics).lower()}
max_inflight = 1024
""")
    return path


#: LiteLLM requires its master key to start with "sk-"; built here so no key-shaped literal sits in the source.
LITELLM_KEY = "-".join(("sk", "bench", "litellm"))


def litellm_config(upstream: str, workdir: Path) -> Path:
    """LiteLLM Proxy over the same upstream: one model, the master key, no database, no callbacks."""
    path = workdir / "litellm.yaml"
    path.write_text(f"""model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {upstream}
      api_key: bench-upstream-key
general_settings:
  master_key: {LITELLM_KEY}
litellm_settings:
  drop_params: true
""")
    return path


@dataclass
class Target:
    name: str
    url: str
    pid: int | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float | None
    errors: int


async def drive(target: Target, n: int, concurrency: int, stream: bool) -> Sample:
    body = json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 64, "stream": stream,
                       **({"stream_options": {"include_usage": True}} if stream else {})}).encode()
    headers = {"content-type": "application/json", **target.headers}
    latencies: list[float] = []
    errors = 0
    remaining = n
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one() -> None:
            nonlocal errors
            async with session.post(target.url, data=body, headers=headers) as response:
                answer = await response.read()
                # A stream that failed after its headers is still a 200: it must end with [DONE] to count.
                if response.status != 200 or (stream and not answer.endswith(b"data: [DONE]\n\n")):
                    errors += 1

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                await one()
                latencies.append(time.perf_counter() - start)

        for _ in range(min(200, n // 5)):  # warm-up: pools, caches, first-call imports
            await one()
        remaining = n
        cpu0 = tree_cpu_ns(target.pid) if target.pid else None
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        cpu1 = tree_cpu_ns(target.pid) if target.pid else None
    latencies.sort()
    cpu = (cpu1 - cpu0) / n / 1000 if cpu0 is not None and cpu1 is not None else None
    return Sample(n / wall, statistics.median(latencies) * 1000,
                  latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, cpu, errors)


def summarise(samples: list[Sample]) -> Sample:
    cpus = [s.cpu_us for s in samples if s.cpu_us is not None]
    return Sample(statistics.median(s.rps for s in samples), statistics.median(s.p50_ms for s in samples),
                  statistics.median(s.p99_ms for s in samples), statistics.median(cpus) if cpus else None,
                  sum(s.errors for s in samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per target per round")
    parser.add_argument("-c", default="1,64", help="concurrency levels, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--state", choices=["memory", "redis"], default="memory")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-metrics", action="store_true", help="gateway without /metrics (to price them)")
    parser.add_argument("--no-access-log", action="store_true", help="gateway without the access log")
    parser.add_argument("--litellm", metavar="EXECUTABLE",
                        help="also measure LiteLLM Proxy: the litellm executable of its own virtual environment")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    levels = [int(c) for c in args.c.split(",")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOON_LLM")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    with start_simulator() as sim, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        upstream = f"{sim.base_url}/v1"
        floor_port, gateway_port = free_port(), free_port()
        config = gateway_config(upstream, workdir, args.state, args.redis_url, metrics=not args.no_metrics,
                                access_log=not args.no_access_log)
        with ExitStack() as stack:
            floor = stack.enter_context(spawn(
                [sys.executable, str(Path(__file__).with_name("floor_proxy.py")), "--upstream", upstream, "--port",
                 str(floor_port)], f"http://127.0.0.1:{floor_port}/health", env))
            gateway = stack.enter_context(spawn(
                [sys.executable, "-m", "spoon_llm", "serve", "--config", str(config), "--port", str(gateway_port)],
                f"http://127.0.0.1:{gateway_port}/health", env, tmp))
            targets = [
                Target("direct", f"{upstream}/chat/completions", sim.pid,
                       {"authorization": "Bearer bench-upstream-key"}),
                Target("floor", f"http://127.0.0.1:{floor_port}/v1/chat/completions", floor.pid),
                Target("gateway", f"http://127.0.0.1:{gateway_port}/v1/chat/completions", gateway.pid,
                       {"authorization": f"Bearer {MASTER_KEY}"}),
            ]
            if args.litellm:
                litellm_port = free_port()
                # Its own interpreter and packages; the bundled price map instead of a download at start-up.
                litellm_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
                litellm_env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False")
                litellm = stack.enter_context(spawn(
                    [str(Path(args.litellm).resolve()), "--config", str(litellm_config(upstream, workdir)),
                     "--host", "127.0.0.1", "--port", str(litellm_port), "--num_workers", "1"],
                    f"http://127.0.0.1:{litellm_port}/health/liveliness", litellm_env, tmp, timeout=180.0))
                targets.append(Target("litellm", f"http://127.0.0.1:{litellm_port}/v1/chat/completions",
                                      litellm.pid, {"authorization": f"Bearer {LITELLM_KEY}"}))
            report: dict[str, dict[str, object]] = {}
            for concurrency in levels:
                samples: dict[str, list[Sample]] = {t.name: [] for t in targets}
                for _ in range(args.rounds):
                    for target in targets:
                        samples[target.name].append(asyncio.run(drive(target, args.n, concurrency, args.stream)))
                summary = {name: summarise(s) for name, s in samples.items()}
                mode = "stream" if args.stream else "json"
                print(f"\n{mode}, c={concurrency}, n={args.n} x {args.rounds} rounds, state={args.state}")
                print(f"{'target':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'vs floor':>9}"
                      f" {'errors':>7}")
                floor_cpu = summary["floor"].cpu_us
                for name, s in summary.items():
                    ratio = f"{s.cpu_us / floor_cpu:.2f}x" if s.cpu_us and floor_cpu and name != "direct" else "-"
                    cpu = f"{s.cpu_us:.0f}" if s.cpu_us is not None else "-"
                    print(f"{name:<8} {s.rps:>8.0f} {s.p50_ms:>8.2f} {s.p99_ms:>8.2f} {cpu:>11} {ratio:>9}"
                          f" {s.errors:>7}")
                litellm_cpu = summary["litellm"].cpu_us if "litellm" in summary else None
                if litellm_cpu and summary["gateway"].cpu_us:
                    print(f"LiteLLM Proxy spends {litellm_cpu / summary['gateway'].cpu_us:.1f}x the gateway's CPU "
                          "per request")
                added = summary["gateway"].p50_ms - summary["direct"].p50_ms
                print(f"gateway adds {added:.2f} ms at p50 over direct "
                      f"(floor adds {summary['floor'].p50_ms - summary['direct'].p50_ms:.2f} ms)")
                report[f"{mode}-c{concurrency}"] = {name: s.__dict__ for name, s in summary.items()}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
