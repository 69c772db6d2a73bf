"""Blocking lifecycle (``with LLMManager()``, ``close()``), the model label of metrics and traces, ``py.typed``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from spoon_llm import ConfigurationManager
from spoon_llm.events import Event
from spoon_llm.manager import LLMManager
from spoon_llm.monitoring import MetricsCollector
from spoon_llm.testing import ProviderSimulator, Reply

from .conftest import KEY


async def test_sync_with_block_closes_its_sessions(sim: ProviderSimulator) -> None:
    code = textwrap.dedent(f"""
        import gc, sys, warnings
        warnings.simplefilter("error")
        from spoon_llm import ConfigurationManager, LLMManager

        config = ConfigurationManager({{"providers": {{"openai": {{"api_key": "{KEY}",
            "base_url": sys.argv[1], "model": "m"}}}}}}, env={{}})
        with LLMManager(config) as manager:
            print(manager.sync.chat("Hello").content)
        second = LLMManager(config)
        print(second.sync.chat("again").content)
        second.close()
        gc.collect()
    """)
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", "-X", "dev", "-c", code, sim.openai_base_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert b"Unclosed" not in err and b"unclosed" not in err, err.decode()
    assert sim.request_count == 2


async def test_metrics_and_traces_label_the_model_that_answered(sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(text="ok"))
    config = ConfigurationManager({"providers": {"openai": {"api_key": KEY, "base_url": sim.openai_base_url}}},
                                  env={})
    metrics = MetricsCollector()
    events: list[Event] = []
    async with LLMManager(config, observers=[metrics]) as manager:
        manager.add_observer(lambda e: events.append(e) if e.kind in ("attempt_end", "request_end") else None)
        response = await manager.chat("hi")  # no model anywhere: the provider's default answers
        chunks = [c async for c in manager.chat_stream("hi")]
    sent = sim.last_request("openai").body["model"]
    assert response.model == sent and response.attempts[-1].model == sent
    assert chunks and all(e.model == sent for e in events), [(e.kind, e.model) for e in events]
    summary = metrics.get_provider_stats("openai")
    assert "unknown" not in str(metrics.get_summary()), str(metrics.get_summary())
    assert summary["total_requests"] == 2


def test_py_typed_ships_with_the_package(tmp_path: Path) -> None:
    import spoon_llm

    assert (Path(spoon_llm.__file__).parent / "py.typed").is_file()
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                          "--cache-dir", str(tmp_path / "cache"), "-c",
                          "from spoon_llm import LLMManager\nm: int = LLMManager"],
                         capture_output=True, text=True, cwd=tmp_path)
    # mypy sees our types (an error about the assignment), not "missing library stubs or py.typed marker".
    assert "py.typed" not in out.stdout and "incompatible types in assignment" in out.stdout.lower(), out.stdout
