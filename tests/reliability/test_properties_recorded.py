"""Property tests for the stream decoders ``test_properties`` does not reach: the Responses API and Bedrock.

Fed real recorded streams (the conformance corpus) split at random, each yields the same chunks whatever the split;
fed random bytes, each raises nothing but ``LLMError``s. The Responses API runs on the SDK transport over an
``httpx2.MockTransport`` (no socket per example); Bedrock, whose only transport is native, through a raw server on
127.0.0.1 that sends each piece as its own HTTP chunk. Example counts are modest; ``deadline=None`` because a busy
machine must not fail a test by being slow.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spoon_llm.errors import LLMError
from spoon_llm.testing import load_conformance
from spoon_llm.testing._bedrock import EVENTSTREAM, eventstream_frames, eventstream_message

from ._raw import Raw, RawServer
from .test_properties import _split

RESPONSES = [c for c in load_conformance("openai_responses") if c.kind == "chat_stream" and c.response.get("sse")]
BEDROCK = [c for c in load_conformance("bedrock")
           if "eventstream" in c.response and c.request["path"].endswith("/converse-stream")]
if not RESPONSES or not BEDROCK:
    pytest.skip("conformance corpus not found", allow_module_level=True)

#: The shortest recorded streams: the split property holds or not whatever the stream's length.
RESPONSES_CASES = sorted(RESPONSES, key=lambda c: len(json.dumps(c.response)))[:2]
BEDROCK_CASES = sorted(BEDROCK, key=lambda c: len(json.dumps(c.response)))[:2]
RANDOM = st.lists(st.integers(min_value=0), max_size=10)


def _sse(items: list[dict[str, Any]]) -> bytes:
    out = []
    for item in items:
        head = f"event: {item['event']}\n".encode() if item.get("event") else b""
        out.append(head + b"data: " + str(item["data"]).encode() + b"\n\n")
    return b"".join(out)


class _Pieces(httpx2.AsyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self._parts = parts

    async def __aiter__(self) -> Any:
        for part in self._parts:
            yield part


async def _responses_stream(parts: list[bytes]) -> list[tuple[str, str]]:
    from spoon_llm.providers.openai_responses import OpenAIResponsesProvider

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=_Pieces(parts))

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(answer))
    provider = OpenAIResponsesProvider(http_client=http)
    await provider.initialize({"api_key": "sk-test-properties-responses-01", "base_url": "http://vendor.test/v1",
                               "model": "m", "transport": "sdk"})
    try:
        return [(chunk.kind, chunk.delta or "") async for chunk in provider.chat_stream("hi")]
    finally:
        await provider.cleanup()
        await http.aclose()


async def _bedrock_stream(parts: list[bytes]) -> list[tuple[str, str]]:
    from spoon_llm.providers.bedrock import BedrockProvider

    async with RawServer() as server:
        server.answer = Raw(headers={"content-type": EVENTSTREAM}, parts=[p for p in parts if p], chunked=True)
        provider = BedrockProvider()
        await provider.initialize({"base_url": server.url, "aws_region": "us-east-1",
                                   "aws_access_key_id": "AKIDEXAMPLE",
                                   "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                   "model": "m"})
        try:
            return [(chunk.kind, chunk.delta or "") async for chunk in provider.chat_stream("hi")]
        finally:
            await provider.cleanup()


def _outcome(run: Any, parts: list[bytes]) -> Any:
    try:
        return asyncio.run(run(parts))
    except LLMError as exc:
        return type(exc)


_WHOLE: dict[str, Any] = {}


def _whole(name: str, run: Any, body: bytes) -> Any:
    if name not in _WHOLE:
        _WHOLE[name] = _outcome(run, [body])
    whole = _WHOLE[name]
    assert isinstance(whole, list) and any(kind == "final" for kind, _ in whole), whole
    return whole


@pytest.mark.parametrize("case", RESPONSES_CASES, ids=lambda c: c.name[:60])
@settings(max_examples=15, deadline=None)
@given(cuts=RANDOM)
def test_responses_stream_chunks_do_not_depend_on_the_split(case: Any, cuts: list[int]) -> None:
    body = _sse(case.response["sse"])
    assert _outcome(_responses_stream, _split(body, cuts)) == _whole(case.name, _responses_stream, body)


@settings(max_examples=25, deadline=None)
@given(data=st.one_of(
    st.binary(max_size=300),
    st.builds(lambda head, noise: head + noise,
              st.sampled_from([b"data: ", b"event: response.output_text.delta\ndata: ",
                               b"data: {\"type\": \"response.output_text.delta\", \"delta\": ",
                               b"data: {\"type\": \"response.completed\", \"response\": "]),
              st.binary(max_size=200)),
), cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_responses_stream_raises_only_llm_errors_on_random_bytes(data: bytes, cuts: list[int]) -> None:
    outcome = _outcome(_responses_stream, _split(data, cuts))  # anything but an LLMError propagates
    assert isinstance(outcome, list) or issubclass(outcome, LLMError)


@pytest.mark.parametrize("case", BEDROCK_CASES, ids=lambda c: c.name[:60])
@settings(max_examples=10, deadline=None)
@given(cuts=RANDOM)
def test_bedrock_stream_chunks_do_not_depend_on_the_split(case: Any, cuts: list[int]) -> None:
    body = b"".join(eventstream_frames(case.response["eventstream"]))
    assert _outcome(_bedrock_stream, _split(body, cuts)) == _whole(case.name, _bedrock_stream, body)


_FRAME = eventstream_message("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"hi"}}')


@settings(max_examples=20, deadline=None)
@given(data=st.one_of(
    st.binary(max_size=300),
    # a valid message, then noise; or a valid prelude whose message is noise (CRCs that do not match)
    st.builds(lambda noise: _FRAME + noise, st.binary(max_size=200)),
    st.builds(lambda noise: _FRAME[:12] + noise, st.binary(max_size=200)),
    # well-framed messages carrying JSON of the wrong shape
    st.builds(lambda event, payload: eventstream_message(event, payload),
              st.sampled_from(["messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop",
                               "messageStop", "metadata", "somethingNew"]),
              st.one_of(st.binary(max_size=60), st.sampled_from([b"[]", b"null", b'{"delta": 5}',
                                                                  b'{"contentBlockIndex": "x", "delta": {}}',
                                                                  b'{"usage": {"inputTokens": "3"}}',
                                                                  b'{"stopReason": 7}']))),
), cuts=st.lists(st.integers(min_value=0), max_size=4))
def test_bedrock_stream_raises_only_llm_errors_on_random_bytes(data: bytes, cuts: list[int]) -> None:
    outcome = _outcome(_bedrock_stream, _split(data, cuts))  # anything but an LLMError propagates
    assert isinstance(outcome, list) or issubclass(outcome, LLMError)
