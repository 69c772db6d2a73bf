"""The README's main job: the offline demo runs end to end and shows what it claims."""

from spoon_llm.demo import run_demo


async def test_demo_runs_every_step():
    lines: list[str] = []
    await run_demo(lines.append)
    text = "\n".join(lines)
    assert "openai/gpt-4.1-mini: 'Simulated reply to: Say hello in five words'" in text
    assert "chunks: 'Simulated reply to: Stream a short answer'" in text
    assert "get_weather({'city': 'Paris'}); finish: tool_calls" in text
    assert ("attempts: openai:ServiceUnavailableError, openai:ServiceUnavailableError, "
            "openai:ServiceUnavailableError, anthropic:ok") in text
    assert "200 answers in order" in text
    assert lines[-1].startswith("done")
