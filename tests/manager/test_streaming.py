"""The streaming contract: transparent fallback before the first chunk, a typed error after it."""

import pytest

from spoon_llm.errors import StreamInterruptedError
from spoon_llm.testing import Fault, Reply

TWO = {"primary": {"model": "model-primary"}, "backup": {"model": "model-backup"}}


async def collect(stream):
    return [chunk async for chunk in stream]


@pytest.mark.parametrize("fault", [Fault.unavailable(), Fault.connection_reset(), Fault.rate_limited(0)])
async def test_stream_failing_before_its_first_chunk_falls_back(sim, make_manager, fault):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"], retry={"max_retries": 0})
    sim.fault("openai", fault, model="model-primary", times=None)
    chunks = await collect(manager.chat_stream("tell me a story"))
    text = "".join(c.delta for c in chunks)
    assert text == chunks[-1].content == "Simulated reply to: tell me a story"
    assert chunks[-1].kind == "final"
    assert chunks[-1].metadata["deployment"] == "backup"
    assert chunks[-1].metadata["fallback_path"] == ["primary", "backup"]
    await manager.cleanup()


async def test_stream_dying_after_output_raises_with_the_partial_text_and_no_repeats(sim, make_manager):
    manager = make_manager(TWO, fallback_chain=["primary", "backup"])
    sim.script("openai", Reply(text="one two three four five six seven eight"), model="model-primary")
    sim.fault("openai", Fault.disconnect(after=3), model="model-primary", times=1)
    seen = []
    with pytest.raises(StreamInterruptedError) as info:
        async for chunk in manager.chat_stream("count"):
            seen.append(chunk.delta)
    delivered = "".join(seen)
    assert delivered and info.value.partial_content == delivered
    assert "one two three four five six seven eight".startswith(delivered)
    assert [r.body["model"] for r in sim.requests_for("openai", "chat")] == ["model-primary"]  # no silent retry
    assert info.value.attempts[-1].deployment == "primary"
    await manager.cleanup()


async def test_resume_on_interrupt_continues_on_the_next_candidate_with_a_prefill(sim, make_manager):
    # A candidate declared to continue an assistant prefill (OpenAI-style APIs do not by default).
    prefilling = {**TWO, "backup": {**TWO["backup"], "assistant_prefill": True}}
    manager = make_manager(prefilling, fallback_chain=["primary", "backup"], retry={"max_retries": 0})
    sim.script("openai", Reply(text="alpha beta gamma delta epsilon"), model="model-primary")
    sim.script("openai", Reply(text=" [continued]"), model="model-backup")
    sim.fault("openai", Fault.disconnect(after=3), model="model-primary", times=1)
    chunks = await collect(manager.chat_stream("go", resume_on_interrupt=True))
    deltas = "".join(c.delta for c in chunks)
    assert deltas.endswith(" [continued]")
    assert chunks[-1].content == deltas
    backup_request = sim.requests_for("openai", "chat")[-1].body
    assert backup_request["model"] == "model-backup"
    assert backup_request["messages"][-1]["role"] == "assistant"
    assert deltas.startswith(backup_request["messages"][-1]["content"])
    await manager.cleanup()


async def test_stream_callbacks_see_every_chunk(sim, make_manager):
    manager = make_manager(TWO)
    seen = []

    async def async_callback(chunk):
        seen.append(("async", chunk.delta))

    chunks = await collect(manager.chat_stream("hi", callbacks=[lambda c: seen.append(("sync", c.delta)),
                                                               async_callback]))
    assert len(seen) == 2 * len(chunks)
    await manager.cleanup()


async def test_collect_stream_folds_a_manager_stream_into_one_response(sim, make_manager):
    from spoon_llm.errors import ResponseParsingError
    from spoon_llm.streaming import collect_stream

    manager = make_manager(TWO)
    response = await collect_stream(manager.chat_stream("fold me"))
    assert response.content == "Simulated reply to: fold me"
    assert response.finish_reason == "stop" and response.usage.output_tokens > 0
    assert response.metadata["deployment"] == "primary"

    async def nothing():
        return
        yield  # an async generator that yields no chunk

    with pytest.raises(ResponseParsingError, match="without any chunk"):
        await collect_stream(nothing())
    await manager.cleanup()
