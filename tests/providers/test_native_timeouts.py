"""The native client's timeouts: one bound on a whole answer's exchange, per read for streams, connect_timeout kept."""

from __future__ import annotations

import pytest

from spoon_llm.errors import TimeoutError as LLMTimeoutError
from spoon_llm.testing import Fault, ProviderSimulator
from spoon_llm.transport import NativeSettings
from spoon_llm.transport._native import NativeClient

SETTINGS = NativeSettings(timeout=12, connect_timeout=2, max_connections=4, keepalive_expiry=5)


def test_whole_answers_get_one_bound_and_streams_one_per_read() -> None:
    client = NativeClient(SETTINGS, {}, provider="openai")
    answer = client.answer_timeout(30)
    assert (answer.total, answer.sock_read, answer.connect, answer.sock_connect) == (30, None, None, 2)
    stream = client.timeout(30)
    assert (stream.total, stream.sock_read, stream.sock_connect) == (None, 30, 2)
    short = client.answer_timeout(0.5)
    assert short.sock_connect == 0.5  # a call's bound shorter than connect_timeout wins
    assert client.answer_timeout(0.5) is short  # the last one is reused, not rebuilt


async def test_a_late_whole_answer_times_out(sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault(delay=30), times=1)
    client = NativeClient(SETTINGS, {"authorization": "Bearer sim-test-0000"}, provider="openai")
    client.open()
    try:
        with pytest.raises(LLMTimeoutError):  # the simulator would answer after 30 s: the bound cut it
            await client.request("POST", f"{sim.base_url}/v1/chat/completions",
                                 body=b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}',
                                 timeout=0.3)
        reply = await client.request("POST", f"{sim.base_url}/v1/chat/completions",
                                     body=b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}',
                                     timeout=10)
        assert reply.status == 200
    finally:
        await client.close()


def test_no_timeout_given_means_the_sections() -> None:
    client = NativeClient(SETTINGS, {}, provider="openai")
    assert client.answer_timeout(None).total == 12
