"""Replay of recorded interactions: every corpus case through the official SDK, compared with ``expected``."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import pytest_asyncio

from spoon_llm.testing import ConformanceCase, ProviderSimulator, find_conformance_dir, load_conformance, sse_bytes

from ._replay_driver import expected_view, replay_through_sdk
from .conftest import make_genai

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

# The vendors whose wire formats the simulator and the SDK replay driver speak today. The corpus also holds
# azure, mistral, groq, xai, cerebras, vertex, bedrock and openai_responses folders: each joins this set when its
# provider and simulator routes exist (the reach work), so a grown corpus never breaks this suite.
REPLAY_PROVIDERS = frozenset({"openai", "anthropic", "gemini", "openrouter", "deepseek", "openai_responses"})
CASES = [case for case in load_conformance() if case.provider in REPLAY_PROVIDERS]
SKIP_REASON = "conformance corpus not found (set SPOON_LLM_CONFORMANCE_DIR or put it at ../shared/conformance)"

# Where the official SDKs knowingly disagree with the corpus' wire-level `expected` (see the corpus'
# tools/replay_with_official_sdks.py): these are SDK behaviours, not replay faults.
SDK_DIFFERENCES = {
    "chat_stream__pydantic-ai__test_openai.test_openai_moderation_stream__i0": "SDK lets a later null usage win",
    "tools__openllmetry__test_functions.test_open_ai_function_calls__i1": "legacy function_call is not a tool call",
    "tools__openllmetry__test_lcel.test_simple_lcel__i0": "legacy function_call is not a tool call",
}
SDK_RAISES = {
    "chat_stream__pydantic-ai__test_openrouter.test_openrouter_stream_error__i0": "in-band stream error -> APIError",
    "tools_stream__pydantic-ai__test_openrouter.test_openrouter_web_search_annotations_stream__i0": (
        "openai's stream state rejects index-less annotation deltas"
    ),
}


def _params(cases: list[ConformanceCase]) -> list[Any]:
    params = []
    for case in cases:
        marks: list[Any] = []
        if case.name in SDK_DIFFERENCES:
            marks.append(pytest.mark.xfail(reason=SDK_DIFFERENCES[case.name], strict=True))
        if case.name in SDK_RAISES:
            marks.append(pytest.mark.skip(reason=SDK_RAISES[case.name]))
        params.append(pytest.param(case, id=f"{case.provider}-{case.name}", marks=marks))
    return params or [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON))]


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


# Clients are module-scoped: building an SDK client (TLS context included) costs tens of ms, times ~290 cases.
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_clients(shared_sim: ProviderSimulator) -> AsyncIterator[dict[str, Any]]:
    import anthropic
    import openai

    sim = shared_sim
    clients: dict[str, Any] = {
        "openai": openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-replay", max_retries=0),
        "openrouter": openai.AsyncOpenAI(base_url=sim.openrouter_base_url, api_key="sk-replay", max_retries=0),
        "deepseek": openai.AsyncOpenAI(base_url=sim.deepseek_base_url, api_key="sk-replay", max_retries=0),
        "anthropic": anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key="sk-replay", max_retries=0),
        "openai_responses": openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-replay", max_retries=0),
    }
    gemini = make_genai(sim.gemini_base_url)
    clients["gemini"] = gemini.aio
    yield clients
    for name in ("openai", "openrouter", "deepseek", "anthropic", "openai_responses"):
        await clients[name].close()
    await gemini.aio.aclose()


@pytest.fixture
def replay_clients(shared_sim: ProviderSimulator, module_clients: dict[str, Any]) -> dict[str, Any]:
    shared_sim.reset()
    return module_clients


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", _params([c for c in CASES if c.kind != "error"]))
async def test_replay_answer(
    case: ConformanceCase, shared_sim: ProviderSimulator, replay_clients: dict[str, Any]
) -> None:
    got = await replay_through_sdk(case, shared_sim, replay_clients)
    assert got == expected_view(case, got)


def _error_of(case: ConformanceCase, exc: BaseException) -> dict[str, Any]:
    if case.provider == "gemini":
        details = exc.details  # type: ignore[attr-defined]
        if isinstance(details.get("message"), str) and details["message"].startswith("{"):
            # google-genai reads an error answered as text/event-stream (what the API does for stream
            # requests) as text: the RPC error is inside.
            details = json.loads(details["message"])
        error = details["error"]
        return {"status": exc.code, "error_type": error["status"], "message": error["message"]}  # type: ignore[attr-defined]
    body = exc.body  # type: ignore[attr-defined]
    error = body.get("error", body) if case.provider == "anthropic" else body
    return {"status": exc.status_code, "error_type": error.get("type"), "message": error.get("message")}  # type: ignore[attr-defined]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", _params([c for c in CASES if c.kind == "error"]))
async def test_replay_error(
    case: ConformanceCase, shared_sim: ProviderSimulator, replay_clients: dict[str, Any]
) -> None:
    with pytest.raises(Exception) as info:
        await replay_through_sdk(case, shared_sim, replay_clients)
    got = _error_of(case, info.value)
    expected = case.expected
    assert got["status"] == expected["status"]
    assert got["message"] == expected["message"]
    if case.provider != "openrouter":  # OpenRouter errors carry a numeric code, no type
        assert got["error_type"] == expected["error_type"]


@pytest.mark.parametrize("provider", sorted(REPLAY_PROVIDERS))
def test_every_vendor_has_replayable_cases(provider: str, conformance_dir: Path) -> None:
    assert load_conformance(provider, root=conformance_dir)


def test_replay_bytes_are_the_recorded_ones(conformance_dir: Path, sim: ProviderSimulator) -> None:
    stream_case = load_conformance("openrouter", kind="chat_stream", tags=["sse_comments"], root=conformance_dir)[0]
    json_case = load_conformance("anthropic", kind="error", root=conformance_dir)[0]
    sim.replay(stream_case.file)  # a path works too
    sim.replay(json.loads(json_case.file.read_text()))  # and a parsed dict
    with httpx2.Client(base_url=sim.base_url) as raw:
        streamed = raw.post("/api/v1/chat/completions", json={"model": "x", "messages": [], "stream": True})
        error = raw.post("/v1/messages", json={"model": "x", "messages": [], "max_tokens": 1})
    assert streamed.content == sse_bytes(stream_case.response["sse"])
    assert streamed.content.startswith(b": OPENROUTER PROCESSING\n\n")
    assert streamed.headers["content-type"] == stream_case.response["content_type"]
    assert error.status_code == json_case.status
    assert error.content == json.dumps(json_case.response["body"]).encode()


def test_replay_matches_endpoint_kind_not_path(conformance_dir: Path, sim: ProviderSimulator) -> None:
    case = load_conformance("deepseek", kind="chat_stream", root=conformance_dir)[0]
    assert case.request["path"].startswith("/beta/")
    embed = load_conformance("openai", kind="embeddings", root=conformance_dir)[0]
    sim.replay(case)
    sim.replay(embed)
    with httpx2.Client(base_url=sim.base_url) as raw:
        other_vendor = raw.post("/v1/chat/completions", json={"model": "m", "messages": []})
        embedding = raw.post("/v1/embeddings", json={"model": "m", "input": "x"})
        deepseek = raw.post("/chat/completions", json={"model": "m", "messages": [], "stream": True})
    assert other_vendor.json()["object"] == "chat.completion"  # OpenAI request: not DeepSeek's replay
    assert embedding.json() == embed.response["body"]
    assert deepseek.content == sse_bytes(case.response["sse"])


def test_retry_after_replayed(conformance_dir: Path, sim: ProviderSimulator) -> None:
    cases = [c for c in load_conformance("anthropic", root=conformance_dir) if "retry-after" in c.response["headers"]]
    assert cases
    sim.replay(cases[0])
    with httpx2.Client(base_url=sim.base_url) as raw:
        response = raw.post("/v1/messages", json={"model": "m", "messages": [], "max_tokens": 1})
    assert response.headers["retry-after"] == cases[0].response["headers"]["retry-after"]


def test_sse_bytes_matches_the_readme_recipe() -> None:
    items = [
        {"comment": "OPENROUTER PROCESSING"},
        {"event": "message_start", "data": '{"a":1}'},
        {"data": "line one\nline two"},
        {"data": "[DONE]"},
    ]
    assert sse_bytes(items) == (
        b': OPENROUTER PROCESSING\n\nevent: message_start\ndata: {"a":1}\n\n'
        b"data: line one\ndata: line two\n\ndata: [DONE]\n\n"
    )


def test_load_conformance_filters(conformance_dir: Path) -> None:
    everything = load_conformance(root=conformance_dir)
    assert len(everything) == len(json.loads((conformance_dir / "index.json").read_text()))
    tools = load_conformance("anthropic", kind="tools_stream", tags=["thinking"], root=conformance_dir)
    assert tools and all(c.provider == "anthropic" and c.kind == "tools_stream" and "thinking" in c.tags for c in tools)
    assert load_conformance("openai", tags=["no-such-tag"], root=conformance_dir) == []


def test_load_conformance_absent_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conformance_dir: Path
) -> None:
    assert load_conformance(root=tmp_path) == []
    monkeypatch.setenv("SPOON_LLM_CONFORMANCE_DIR", str(conformance_dir))
    assert find_conformance_dir() == conformance_dir
    monkeypatch.setenv("SPOON_LLM_CONFORMANCE_DIR", str(tmp_path))
    found = find_conformance_dir()
    assert found != tmp_path  # an env var without index.json is ignored; other places are tried
    assert os.environ["SPOON_LLM_CONFORMANCE_DIR"] == str(tmp_path)
