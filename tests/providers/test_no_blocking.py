"""Nothing blocks the event loop: each provider runs with every loop callback's CPU time measured.

The probe runs in a fresh interpreter so that the SDK (or aiohttp) import and client construction (the slowest
steps of all) are measured too, on both transports: ``initialize`` must push them off the loop. What is measured
is the CPU time the loop's thread spends in each callback (``time.thread_time``), not wall time: on a busy
shared machine a 20 ms callback can take 200 ms of wall time while other processes run, and asyncio's own
wall-clock detector then fails the test about one run in eight. Importing an SDK (320-830 ms of CPU) or building
a client on the loop costs CPU wherever it runs, so ``SLOW_SECONDS`` of CPU in one callback still catches it,
and a control run with a deliberate 200 ms CPU-bound block proves the detector sees one.

CPU time is still not immune to load: on a virtual machine whose host is overcommitted, time stolen from the vCPU
while a callback runs can be charged to the thread. Two things keep that from failing the test. The configuration
models' deferred pydantic build (~25 ms of CPU once a process, the largest legitimate step on the loop) happens
before the loop starts, as an application loads its configuration first; what is left peaks at ~15 ms, a third of
``SLOW_SECONDS``. And work done on the loop is deterministic, load is not: a probe that reports a slow step is run
again, and the test fails only when the same step (the chain of coroutines it resumed) is slow in every run.
The cyclic garbage collector's pauses are not charged to the callback they interrupt: after an SDK import a full
collection takes ~0.1 s of CPU in whichever callback allocates next, the same in every run, and moving it is not in
the provider's power.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SLOW_SECONDS = 0.05

#: Per vendor: provider module and class, the SDK module that must not be imported early, key, and the base URL
#: attribute of the simulator.
VENDORS = {
    "openai": ("spoon_llm.providers.openai", "OpenAIProvider", "openai", "sk-test-0000000000000001",
               "openai_base_url"),
    "anthropic": ("spoon_llm.providers.anthropic", "AnthropicProvider", "anthropic", "sk-ant-test-1234567890",
                  "anthropic_base_url"),
    "gemini": ("spoon_llm.providers.gemini", "GeminiProvider", "google.genai", "AIzaSyTEST00000000000000000",
               "gemini_base_url"),
}

PROBE = textwrap.dedent("""
    import asyncio, importlib, json, logging, sys, types
    from spoon_llm.testing import Fault, ProviderSimulator, Reply, ToolCall

    import time

    slow = []
    LIMIT = float(sys.argv[1])
    _run = asyncio.events.Handle._run

    import gc, threading
    # CPU time the cyclic garbage collector spends on the loop's thread. A full collection after an SDK's import
    # (a heap of pydantic models) takes ~0.1 s and runs in whatever callback happens to allocate next: it is the
    # collector's pause, not work the callback does, so it is not charged to the callback.
    in_gc = [0.0, 0.0]  # [total, started]

    def gc_clock(phase, info):
        if threading.get_ident() != LOOP_THREAD:
            return
        if phase == "start":
            in_gc[1] = time.thread_time()
        else:
            in_gc[0] += time.thread_time() - in_gc[1]

    gc.callbacks.append(gc_clock)
    LOOP_THREAD = threading.get_ident()

    def step_site(callback):
        # A task step is named by the chain of coroutines it resumes (stable from run to run); any other
        # callback by its repr.
        task = getattr(callback, "__self__", None)
        coro = task.get_coro() if isinstance(task, asyncio.Task) else None
        sites = []
        while isinstance(coro, types.CoroutineType) and len(sites) < 12:
            sites.append(coro.cr_code.co_qualname)
            coro = coro.cr_await
        return " > ".join(sites)

    def measured_run(self):
        # CPU time of this thread only: other processes on the machine cannot inflate it. The simulator's own
        # loop (another thread) is not the one under test.
        if self._loop is not LOOP:
            return _run(self)
        where = step_site(self._callback)
        collected = in_gc[0]
        started = time.thread_time()
        try:
            return _run(self)
        finally:
            spent = time.thread_time() - started - (in_gc[0] - collected)
            if spent > LIMIT:
                # repr only for a slow one: taking the repr of every callback broke aiohttp's response parsing
                slow.append(f"{where or repr(self._callback)[:200]} took {spent:.3f} s of CPU")

    asyncio.events.Handle._run = measured_run
    LOOP = None
    VENDOR, MODULE, CLASS, SDK, KEY, BASE, TRANSPORT = sys.argv[2:9]
    # The provider module itself (not its SDK) is imported before the loop starts, as an application would; so is
    # its configuration loaded, which builds the config models' deferred pydantic schemas (~25 ms, once a process).
    Provider = getattr(importlib.import_module(MODULE), CLASS)
    importlib.import_module("spoon_llm.config.models").ProviderConfig(name=VENDOR)

    WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}

    async def main(sim):
        if sys.argv[9:] == ["control"]:
            until = time.thread_time() + 0.2
            while time.thread_time() < until:  # a deliberate CPU-bound block: proves the detector sees one
                pass
        assert SDK not in sys.modules and "aiohttp" not in sys.modules
        provider = Provider()
        await provider.initialize({"api_key": KEY, "base_url": getattr(sim, BASE), "transport": TRANSPORT})
        sim.script(VENDOR, Reply(text="x", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]), times=2)
        first = await provider.chat("hi", tools=[WEATHER])
        async for _ in provider.chat_stream([{"role": "user", "content": "hi"}, first.to_message(),
                                             {"role": "tool", "tool_call_id": first.tool_calls[0].id,
                                              "content": "cold"}], tools=[WEATHER]):
            pass
        for _ in range(20):
            await provider.chat("again")
            async for _ in provider.chat_stream("again"):
                pass
        if VENDOR != "openai":
            await provider.count_tokens("count")
        if VENDOR != "anthropic":
            await provider.embed(["a", "b"])
        await provider.health_check()
        sim.fault(VENDOR, Fault.overloaded())
        try:
            await provider.chat("boom")
        except Exception:
            pass
        await provider.cleanup()

    with ProviderSimulator() as sim:
        with asyncio.Runner() as runner:
            LOOP = runner.get_loop()
            runner.run(main(sim))
    print(json.dumps(slow))
""")


def run_probe(vendor: str, transport: str, control: bool = False) -> list[str]:
    module, cls, sdk, key, base = VENDORS[vendor]
    args = [str(SLOW_SECONDS), vendor, module, cls, sdk, key, base, transport, *(["control"] if control else [])]
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", PROBE, *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    slow: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return slow


def steady_slow_steps(vendor: str, transport: str, runs: int = 3, control: bool = False) -> set[str]:
    """The steps slow in every one of up to ``runs`` probes (stops early once none is left)."""
    steady: set[str] | None = None
    for _ in range(runs):
        sites = {line.rsplit(" took ", 1)[0] for line in run_probe(vendor, transport, control)}
        steady = sites if steady is None else steady & sites
        if not steady:
            return set()
    return steady or set()


@pytest.mark.parametrize("transport", ["native", "sdk"])
@pytest.mark.parametrize("vendor", ["openai", "anthropic", "gemini"])
def test_no_callback_blocks_the_event_loop(vendor: str, transport: str) -> None:
    assert steady_slow_steps(vendor, transport) == set()


def test_a_block_is_seen_in_every_run() -> None:
    """The re-run does not hide real blocking: a deliberate block is the same slow step in all three probes."""
    assert steady_slow_steps("gemini", "native", control=True) != set()


def test_the_detector_sees_a_deliberate_block() -> None:
    assert any("took" in line for line in run_probe("gemini", "native", control=True))
