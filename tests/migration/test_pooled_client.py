"""The older pooled module's spellings, import-renamed: ``await get_llm_manager()``, ``manager.get_client()``
answering in text, ``Message(MessageRole.SYSTEM, "...")`` by position, and a stream read as text."""

from __future__ import annotations

from collections.abc import Callable

from spoon_llm import LLMManager, Message, MessageRole, get_llm_manager, set_llm_manager
from spoon_llm.testing import ProviderSimulator, Reply

from .conftest import openai_section


async def test_the_pooled_modules_client_answers_in_text(sim: ProviderSimulator,
                                                         make_manager: Callable[..., LLMManager]) -> None:
    set_llm_manager(make_manager({"providers": {"openai": openai_section(sim)}}))
    try:
        manager = await get_llm_manager()
        assert isinstance(manager, LLMManager) and manager is get_llm_manager()
        client = manager.get_client()
        sim.script("openai", Reply(text="Hello there"), times=1)
        assert await client.chat("Hello") == "Hello there"
        sim.script("openai", Reply(text="Done"), times=1)
        messages = [Message(MessageRole.SYSTEM, "Be brief."), Message(MessageRole.USER, "Summarise")]
        assert await client.complete(messages, temperature=0.7, max_tokens=200) == "Done"
        sent = sim.last_request("openai").body
        assert (sent["temperature"], sent["max_tokens"]) == (0.7, 200)
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        sim.script("openai", Reply(text="one two three"), times=1)
        pieces = [piece async for piece in client.stream_complete(messages)]
        assert all(isinstance(p, str) for p in pieces) and "".join(pieces) == "one two three"
    finally:
        set_llm_manager(None)


async def test_a_stream_reads_as_text(sim: ProviderSimulator, make_manager: Callable[..., LLMManager]) -> None:
    manager = make_manager({"providers": {"openai": openai_section(sim)}})
    sim.script("openai", Reply(text="streamed words"), times=1)
    full = ""
    async for chunk in manager.chat_stream("go"):
        full += chunk  # as the older API's text chunks were read
    assert full == "streamed words"


def test_a_message_takes_role_and_content_by_position() -> None:
    assert Message("user", "Hi") == Message(role="user", content="Hi")
    assert Message(MessageRole.ASSISTANT).role == "assistant"
    assert Message(MessageRole.TOOL, "{}", tool_call_id="call_1").tool_call_id == "call_1"
