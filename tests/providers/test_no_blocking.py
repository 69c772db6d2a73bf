"""Nothing blocks the event loop: each provider runs under asyncio debug mode with a slow-callback detector.

The probe runs in a fresh interpreter so that the SDK (or aiohttp) import and client construction (the slowest
steps of all) are measured too, on both transports: ``initialize`` must push them off the loop. Any callback
taking longer than ``SLOW_SECONDS`` is logged by asyncio ("Executing ... took ...") and fails the test.
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
    import asyncio, importlib, json, logging, sys
    from spoon_llm.testing import Fault, ProviderSimulator, Reply, ToolCall

    slow = []

    class Catch(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if "took" in message and "Executing" in message:
                slow.append(message[:200] + " ... " + message[-60:])

    logging.getLogger("asyncio").addHandler(Catch())
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    VENDOR, MODULE, CLASS, SDK, KEY, BASE, TRANSPORT = sys.argv[2:9]
    # The provider module itself (not its SDK) is imported before the loop starts, as an application would.
    Provider = getattr(importlib.import_module(MODULE), CLASS)

    WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}

    async def main(sim):
        loop = asyncio.get_running_loop()
        loop.slow_callback_duration = float(sys.argv[1])
        if sys.argv[9:] == ["control"]:
            import time
            time.sleep(0.2)  # a deliberate block: proves the detector sees one
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
        asyncio.run(main(sim), debug=True)
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


@pytest.mark.parametrize("transport", ["native", "sdk"])
@pytest.mark.parametrize("vendor", ["openai", "anthropic", "gemini"])
def test_no_callback_blocks_the_event_loop(vendor: str, transport: str) -> None:
    slow = run_probe(vendor, transport)
    if slow:
        # Wall-clock detection: a busy shared machine can stretch one callback; a real block shows up twice.
        slow = run_probe(vendor, transport)
    assert slow == []


def test_the_detector_sees_a_deliberate_block() -> None:
    assert any("took" in line for line in run_probe("gemini", "native", control=True))
