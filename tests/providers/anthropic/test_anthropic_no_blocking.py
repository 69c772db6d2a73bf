"""Nothing blocks the event loop: the provider runs under asyncio debug mode with a slow-callback detector.

The probe runs in a fresh interpreter so that the SDK import and client construction (the slowest steps of all)
are measured too: ``initialize`` must push them off the loop. Any callback taking longer than
``SLOW_SECONDS`` is logged by asyncio ("Executing ... took ...") and fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SLOW_SECONDS = 0.05

PROBE = textwrap.dedent("""
    import asyncio, json, logging, sys
    from spoon_llm.testing import Fault, ProviderSimulator, Reply, ToolCall

    slow = []

    class Catch(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if "took" in message and "Executing" in message:
                slow.append(message[:200] + " ... " + message[-60:])

    logging.getLogger("asyncio").addHandler(Catch())
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    # The provider module itself (not its SDK) is imported before the loop starts, as an application would.
    from spoon_llm.providers.anthropic import AnthropicProvider

    WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}

    async def main(sim):
        loop = asyncio.get_running_loop()
        loop.slow_callback_duration = float(sys.argv[1])
        if sys.argv[2:] == ["control"]:
            import time
            time.sleep(0.2)  # a deliberate block: proves the detector sees one
        assert "anthropic" not in sys.modules
        provider = AnthropicProvider()
        await provider.initialize({"api_key": "sk-ant-test-1234567890", "base_url": sim.anthropic_base_url})
        sim.script("anthropic", Reply(text="x", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]), times=2)
        first = await provider.chat("hi", tools=[WEATHER])
        async for _ in provider.chat_stream([{"role": "user", "content": "hi"}, first.to_message(),
                                             {"role": "tool", "tool_call_id": first.tool_calls[0].id,
                                              "content": "cold"}], tools=[WEATHER]):
            pass
        for _ in range(20):
            await provider.chat("again")
            async for _ in provider.chat_stream("again"):
                pass
        await provider.count_tokens("count")
        await provider.health_check()
        sim.fault("anthropic", Fault.overloaded())
        try:
            await provider.chat("boom")
        except Exception:
            pass
        await provider.cleanup()

    with ProviderSimulator() as sim:
        asyncio.run(main(sim), debug=True)
    print(json.dumps(slow))
""")


def run_probe(*args: str) -> list[str]:
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", PROBE, str(SLOW_SECONDS), *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    slow: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return slow


def test_no_callback_blocks_the_event_loop() -> None:
    slow = run_probe()
    if slow:
        # Wall-clock detection: a busy shared machine can stretch one callback; a real block shows up twice.
        slow = run_probe()
    assert slow == []


def test_the_detector_sees_a_deliberate_block() -> None:
    assert any("took" in line for line in run_probe("control"))
