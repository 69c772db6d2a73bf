"""Protocol details of a live gateway that clients rely on: thinking signatures, stop sequences, cache breakpoints
on tools, tool arguments cut short, request ids, options a backend cannot honour, images in tool results."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from spoon_llm.testing import ProviderSimulator, Reply, ToolCall, find_conformance_dir

from .conftest import MASTER_KEY, Gateway

CLAUDE = "anthropic/claude-sonnet-4-5"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def claude(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0)


def corpus_case(name: str) -> Path:
    """A recorded Anthropic interaction of the conformance corpus (the test is skipped without the corpus)."""
    root = find_conformance_dir()
    path = root / "anthropic" / name if root is not None else None
    if path is None or not path.is_file():
        pytest.skip(f"conformance case anthropic/{name} not found (set SPOON_LLM_CONFORMANCE_DIR or put the corpus "
                    "at ../shared/conformance)")
    return path


def test_streamed_thinking_keeps_its_signature(gateway: Gateway, sim: ProviderSimulator) -> None:
    case = sim.replay(corpus_case(
        "chat_stream__openllmetry__test_thinking.test_anthropic_thinking_streaming_legacy__i0.json"))
    signature = next(json.loads(e["data"])["delta"]["signature"] for e in case.response["sse"]
                     if "signature_delta" in e["data"])
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with claude(gateway) as c:
        with c.messages.stream(model=CLAUDE, max_tokens=2048, thinking=thinking,
                               messages=[{"role": "user", "content": "strawberry?"}]) as stream:
            deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
            final = stream.get_final_message()
        block = final.content[0]
        assert block.type == "thinking" and block.signature == signature
        assert deltas.count("signature_delta") == 1
        # The next turn sends the block back as received: the upstream gets the signature it issued.
        sim.script("anthropic", Reply(text="3"), times=1)
        c.messages.create(model=CLAUDE, max_tokens=2048, thinking=thinking, messages=[
            {"role": "user", "content": "strawberry?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
            {"role": "user", "content": "sure?"}])
    sent = sim.last_request("anthropic").body["messages"][1]["content"][0]
    assert sent["type"] == "thinking" and sent["signature"] == block.signature


def test_stop_sequence_is_named(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.replay(corpus_case("chat__mirascope__test_call_with_params.anthropic_claude_sonnet_4_0__i0.json"))
    sim.replay(corpus_case(
        "chat_stream__llm-anthropic__test_anthropic.test_prompt_with_prefill_and_stop_sequences__i0.json"))
    with claude(gateway) as c:
        message = c.messages.create(model=CLAUDE, max_tokens=500, stop_sequences=["4242"],
                                    messages=[{"role": "user", "content": "What is 4200 + 42?"}])
        with c.messages.stream(model=CLAUDE, max_tokens=500, stop_sequences=["```"],
                               messages=[{"role": "user", "content": "A pelican function"}]) as stream:
            streamed = stream.get_final_message()
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "4242")
    assert (streamed.stop_reason, streamed.stop_sequence) == ("stop_sequence", "```")


def test_cache_breakpoints_on_tools_and_tool_results_reach_anthropic(gateway: Gateway,
                                                                     sim: ProviderSimulator) -> None:
    tool = {"name": "Read", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
            "strict": True, "cache_control": {"type": "ephemeral"}}
    with claude(gateway) as c:
        c.messages.create(model=CLAUDE, max_tokens=100, tools=[tool], messages=[
            {"role": "user", "content": "read a.txt"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read",
                                               "input": {"path": "a.txt"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "no such file",
                                          "is_error": True, "cache_control": {"type": "ephemeral"}}]}])
    sent = sim.last_request("anthropic").body
    assert sent["tools"] == [tool]
    assert sent["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                "content": "no such file", "is_error": True,
                                                "cache_control": {"type": "ephemeral"}}]


def test_tool_arguments_cut_by_the_output_limit_are_an_answer(gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.script("openai", Reply(tool_calls=[ToolCall("write_file", '{"path": "a.txt", "content": "hel', id="call_1")],
                               finish_reason="length"), times=1)
    with claude(gateway) as c:
        message = c.messages.create(model="gpt-4o-mini", max_tokens=20,
                                    tools=[{"name": "write_file", "input_schema": {"type": "object"}}],
                                    messages=[{"role": "user", "content": "write it"}])
    assert message.stop_reason == "max_tokens"
    use = message.content[0]
    assert (use.type, use.id, use.name, use.input) == ("tool_use", "call_1", "write_file", {"path": "a.txt"})
    assert sim.request_count == 1


def test_anthropic_answers_carry_request_id(gateway: Gateway, sim: ProviderSimulator) -> None:
    question = {"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    with claude(gateway) as c:
        raw = c.messages.with_raw_response.create(**question)
        assert raw.request_id and raw.request_id == raw.headers["x-request-id"]
        assert raw.parse()._request_id == raw.request_id
        with c.messages.stream(**question) as stream:
            stream.get_final_message()
            assert stream.response.headers["request-id"] == stream.response.headers["x-request-id"]
        with pytest.raises(anthropic.NotFoundError) as refused:
            c.messages.create(**{**question, "model": "no-such-model"})
    assert refused.value.request_id and refused.value.request_id == refused.value.response.headers["x-request-id"]
    # The OpenAI family keeps its own header only.
    answer = httpx2.post(gateway.url + "/v1/chat/completions", headers={"authorization": f"Bearer {MASTER_KEY}"},
                         json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}, timeout=10)
    assert answer.headers["x-request-id"] and "request-id" not in answer.headers


@pytest.mark.parametrize("options", [{"logprobs": True, "top_logprobs": 3}, {"logit_bias": {"50256": -100}},
                                     {"seed": 7}, {"presence_penalty": 1.0}, {"frequency_penalty": 0.5}])
def test_options_an_anthropic_backend_cannot_honour_are_refused(gateway: Gateway, sim: ProviderSimulator,
                                                                options: dict[str, object]) -> None:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0) as c:
        with pytest.raises(openai.BadRequestError) as refused:
            c.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "hi"}],
                                      **options)
        # Values that ask for nothing are served; the OpenAI family takes every one of these options.
        c.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "hi"}], logprobs=False,
                                  presence_penalty=0, logit_bias={})
        c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], **options)
    assert refused.value.status_code == 400
    assert refused.value.body["param"] in options
    assert [r.vendor for r in sim.requests_for()] == ["anthropic", "openai"]
    assert all(sim.last_request("openai").body[key] == value for key, value in options.items())


def test_image_in_a_tool_result_reaches_anthropic(gateway: Gateway, sim: ProviderSimulator) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    with claude(gateway) as c:
        c.messages.create(model=CLAUDE, max_tokens=50, tools=[{"name": "Read", "input_schema": {"type": "object"}}],
                          messages=[
                              {"role": "user", "content": "look at shot.png"},
                              {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read",
                                                                 "input": {"file": "shot.png"}}]},
                              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                            "content": [{"type": "text", "text": "shot.png:"},
                                                                        image]}]}])
        # A backend of another family has no image in a tool result: still a 400 naming it.
        with pytest.raises(anthropic.BadRequestError):
            c.messages.create(model="gpt-4o-mini", max_tokens=50, messages=[
                {"role": "user", "content": "look"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [image]}]}])
    result = sim.last_request("anthropic").body["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1"
    assert result["content"] == [{"type": "text", "text": "shot.png:"}, image]
    assert [r.vendor for r in sim.requests_for()] == ["anthropic"]


def test_logprobs_from_an_openai_backend_reach_the_client(gateway: Gateway, sim: ProviderSimulator) -> None:
    logprobs = {"content": [{"token": "Hi", "logprob": -0.01, "bytes": [72, 105], "top_logprobs": []}],
                "refusal": None}
    sim.replay({"provider": "openai", "kind": "chat",
                "request": {"method": "POST", "path": "/v1/chat/completions", "body": {}},
                "response": {"status": 200, "content_type": "application/json",
                             "headers": {"content-type": "application/json"},
                             "body": {"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                                      "model": "gpt-4o-mini",
                                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                                                   "logprobs": logprobs, "finish_reason": "stop"}],
                                      "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}}})
    response = httpx2.post(gateway.url + "/v1/chat/completions", headers={"authorization": f"Bearer {MASTER_KEY}"},
                           json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
                                 "logprobs": True}, timeout=10)
    assert response.status_code == 200 and response.json()["choices"][0]["logprobs"] == logprobs
