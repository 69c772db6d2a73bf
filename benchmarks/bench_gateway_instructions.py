"""Instructions per request of ``spoon-llm serve`` and of the floor proxy, counted by valgrind's callgrind.

CPU time on a shared or busy machine moves with everything else running (caches, frequency, the other core):
for a change of a few percent, counting instructions is the steadier figure. Each target runs under
``valgrind --tool=callgrind`` with instrumentation off until it has served a warm-up; then it is switched on
(``callgrind_control -i on``) for ``-n`` requests and the count is read back. User-space instructions only: the
kernel's share (sockets, epoll) is not in it, so the ratio to the floor runs higher than the CPU-time ratio of
``bench_gateway.py``. Needs valgrind (``apt-get install valgrind``); about a minute per target.

    python benchmarks/bench_gateway_instructions.py               # JSON, c=1, gateway and floor
    python benchmarks/bench_gateway_instructions.py --stream -c 64
    python benchmarks/bench_gateway_instructions.py --tree /path/to/other/checkout   # that checkout's spoon_llm
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gateway import MASTER_KEY, Target, drive, free_port, gateway_config, spawn  # noqa: E402
from harness import REPO_ROOT, start_simulator  # noqa: E402


def _count(out_prefix: str) -> int:
    """The largest ``summary``/``totals`` line of the dump files (the dump taken after the measured requests)."""
    total = 0
    for path in Path(out_prefix).parent.glob(Path(out_prefix).name + "*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total


def measure(name: str, command: list[str], env: dict[str, str], n: int, concurrency: int, stream: bool,
            workdir: Path) -> float:
    """Instructions per request of ``command`` (a server; ``{port}`` in it is replaced) over ``n`` requests."""
    port = free_port()
    out = str(workdir / f"{name}.callgrind")
    args = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", sys.executable,
            *[a.replace("{port}", str(port)) for a in command]]
    with spawn(args, f"http://127.0.0.1:{port}/health", env, str(workdir), timeout=300) as process:
        target = Target(name, f"http://127.0.0.1:{port}/v1/chat/completions", None,
                        {"authorization": f"Bearer {MASTER_KEY}"})
        failed = asyncio.run(drive(target, 300, concurrency, stream)).errors  # warm-up, not counted
        for step in (["-i", "on"], None, ["-i", "off"], ["-d"]):
            if step is None:
                failed += asyncio.run(drive(target, n, concurrency, stream)).errors
            else:
                subprocess.run(["callgrind_control", *step, str(process.pid)], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if failed:  # the count would be that of the error path, not of serving
        raise SystemExit(f"{name}: {failed} requests failed (not a 200 answer, or a stream without [DONE]); "
                         "no count reported")
    # drive() runs a warm-up of its own (min(200, n // 5) requests) inside the counted window.
    return _count(out) / (n + min(200, n // 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300, help="requests counted per target")
    parser.add_argument("-c", type=int, default=1, help="concurrency")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--tree", default=str(REPO_ROOT), help="a directory holding the spoon_llm package to run")
    parser.add_argument("--no-floor", action="store_true", help="the gateway alone")
    options = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOON_LLM")}
    env["PYTHONPATH"] = options.tree
    env["PYTHONHASHSEED"] = "0"
    floor_script = str(Path(__file__).with_name("floor_proxy.py"))
    with start_simulator() as sim, tempfile.TemporaryDirectory() as tmp:
        upstream = f"{sim.base_url}/v1"
        workdir = Path(tmp)
        config = gateway_config(upstream, workdir, "memory", None)
        gateway = measure("gateway", ["-m", "spoon_llm", "serve", "--config", str(config), "--port", "{port}"], env,
                          options.n, options.c, options.stream, workdir)
        mode = f"{'stream' if options.stream else 'json'}, c={options.c}, n={options.n}"
        print(f"{mode}: gateway {gateway / 1000:,.1f}k instructions per request")
        if not options.no_floor:
            floor = measure("floor", [floor_script, "--upstream", upstream, "--port", "{port}"], env, options.n,
                            options.c, options.stream, workdir)
            print(f"{mode}: floor   {floor / 1000:,.1f}k instructions per request; gateway/floor "
                  f"{gateway / floor:.2f}x")


if __name__ == "__main__":
    main()
