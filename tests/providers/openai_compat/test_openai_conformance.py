"""Conformance: every recorded OpenAI / OpenRouter / DeepSeek interaction replays through our providers, on both
transports (``native`` and ``sdk``).

For each file the simulator serves the recorded response over a real socket; the call is rebuilt from the
recorded request (messages as wire dicts, parameters as keywords); the normalised result must equal the file's
``expected`` (text, tool calls with parsed arguments, native finish reason, usage, reasoning, refusal; for streams
the concatenated deltas; for errors the mapped class, status and the provider's message). The request we sent is
then compared with the recorded body; every difference must be one listed in ``KNOWN_REQUEST_DIFFERENCES`` with
its reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from _openai_compat_helpers import (
    DEEPSEEK_KEY,
    OPENAI_KEY,
    OPENROUTER_KEY,
    StreamResult,
    body_differences,
    call_from_recorded,
    normalise_body,
    response_summary,
    stream_summary,
    usage_as_expected,
)

from spoon_llm.errors import LLMError, ProviderError, error_for_status
from spoon_llm.providers.openai._decode import parse_usage
from spoon_llm.testing import ConformanceCase, ProviderSimulator

FOLDERS = ("openai", "openrouter", "deepseek")
_ROOT = Path(os.environ.get("SPOON_LLM_CONFORMANCE_DIR")
             or Path(__file__).resolve().parents[3] / ".." / "shared" / "conformance").resolve()

#: Request-body differences the API would care about, per file, with the reason. Anything else fails.
KNOWN_REQUEST_DIFFERENCES: dict[str, tuple[list[str], str]] = {
    "error__pydantic-ai__test_openai.test_openai_o1_mini_system_role_system__i0": (
        ["messages[0].role: sent \"user\", recorded \"system\""],
        "o1-mini refuses system turns (the recorded 400 says so); we send them as user turns, which the real API "
        "would have accepted -- the replayed 400 is still mapped correctly.",
    ),
}
#: Extra differences when the same request is rebuilt from ``Message`` objects (our schema is not the wire's).
KNOWN_MESSAGE_OBJECT_DIFFERENCES: dict[str, tuple[list[str], str]] = {
    name: (["messages[5].reasoning_content: missing (recorded \"\")"],
           "an empty reasoning is no reasoning in our Message, so nothing is sent for it; DeepSeek reads an "
           "empty reasoning_content and an absent one alike")
    for name in ("tools__pydantic-ai__test_deepseek.test_deepseek_deferred_capability_with_thinking__i1",
                 "tools__pydantic-ai__test_deepseek.test_deepseek_deferred_capability_with_thinking__i2")
}
#: Files whose request is not a chat/completions/embeddings request at all.
NON_INFERENCE = {
    "error__openllmetry__test_generate_metrics__i0": "recorded from /v1/traces/ingest (Agents SDK tracing); "
    "a chat request receives the replayed 500 and only the error mapping is compared",
}


def _case_files() -> list[Any]:
    if not _ROOT.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"conformance corpus not found at {_ROOT}"))]
    files = []
    for folder in FOLDERS:
        found = sorted((_ROOT / folder).glob("*.json"))
        if not found:
            files.append(pytest.param(None, id=folder, marks=pytest.mark.skip(reason=f"{_ROOT / folder} is absent")))
        files.extend(pytest.param(path, id=f"{folder}/{path.stem}") for path in found)
    return files


TRANSPORTS = pytest.mark.parametrize("transport", ["native", "sdk"])


async def _make_provider(case: ConformanceCase, sim: ProviderSimulator, suffix: str, transport: str) -> Any:
    if case.provider == "openai":
        from spoon_llm.providers.openai import OpenAIProvider

        provider: Any = OpenAIProvider()
        config = {"api_key": OPENAI_KEY, "base_url": sim.openai_base_url}
    elif case.provider == "openrouter":
        from spoon_llm.providers.openrouter import OpenRouterProvider

        provider = OpenRouterProvider()
        config = {"api_key": OPENROUTER_KEY, "base_url": sim.openrouter_base_url}
    else:
        from spoon_llm.providers.deepseek import DeepSeekProvider

        provider = DeepSeekProvider()
        config = {"api_key": DEEPSEEK_KEY, "base_url": sim.deepseek_base_url + suffix}
    await provider.initialize({**config, "transport": transport})
    return provider


async def _consume(stream: Any) -> StreamResult:
    result = StreamResult(chunks=[])
    try:
        async for chunk in stream:
            result.chunks.append(chunk)
    except LLMError as exc:
        result.error = exc
    return result


def _check_error(error: BaseException | None, expected: dict[str, Any]) -> None:
    assert isinstance(error, ProviderError), f"expected an error, got {error!r}"
    status = expected["status"]
    assert isinstance(error, error_for_status(status)), f"{type(error).__name__} for HTTP {status}"
    assert error.status_code == status
    if "message" in expected:
        assert error.message == expected["message"]
    if "error_type" in expected:
        assert error.error_type == expected["error_type"]
    if "error_code" in expected:
        assert error.error_code == str(expected["error_code"])


def _check_summary(summary: dict[str, Any], expected: dict[str, Any]) -> None:
    assert summary["text"] == expected["text"]
    assert summary["tool_calls"] == expected["tool_calls"]
    assert summary["finish_reason"] == expected["finish_reason"]
    assert summary["n_choices"] == max(expected.get("n_choices", 1), 1)
    assert summary["reasoning_text"] == expected.get("reasoning_text")
    assert summary["refusal"] == expected.get("refusal")
    assert summary["native_finish_reason"] == expected.get("native_finish_reason")


@pytest.mark.conformance
@TRANSPORTS
@pytest.mark.parametrize("case_file", _case_files())
async def test_conformance(case_file: Path, sim: ProviderSimulator, transport: str) -> None:
    case = ConformanceCase.from_file(case_file)
    expected = case.expected
    call = call_from_recorded(case.request)
    provider = await _make_provider(case, sim, call.base_suffix, transport)
    sim.replay(case)
    try:
        method = getattr(provider, call.method)
        if call.method.endswith("_stream"):
            result = await _consume(method(*call.args, **call.kwargs))
            if case.status >= 400:
                _check_error(result.error, expected)
            elif "stream_error" in expected:
                _check_error_in_stream(result, expected)
            else:
                assert result.error is None, repr(result.error)
                _check_summary(stream_summary(result), expected)
                assert result.final is not None
                assert usage_as_expected(result.final.usage, expected["usage"]) == expected["usage"]
        else:
            error: BaseException | None = None
            try:
                response = await method(*call.args, **call.kwargs)
            except LLMError as exc:
                error = exc
            if case.status >= 400:
                _check_error(error, expected)
            elif call.method == "embed":
                assert error is None, repr(error)
                assert len(response.embeddings) == expected["n_embeddings"]
                dimensions = sorted({len(v) for v in response.embeddings})
                if expected["encoding"] == "float":
                    assert dimensions == expected["dimensions"]
                else:  # base64 vectors (the corpus does not decode them): decoded floats, one length
                    assert len(dimensions) == 1 and dimensions[0] > 0
                    assert all(isinstance(x, float) for x in response.embeddings[0])
                assert usage_as_expected(response.usage, expected["usage"]) == expected["usage"]
            else:
                assert error is None, repr(error)
                _check_summary(response_summary(response), expected)
                assert usage_as_expected(response.usage, expected["usage"]) == expected["usage"]
    finally:
        await provider.cleanup()
    _check_request(case, sim)


def _check_error_in_stream(result: StreamResult, expected: dict[str, Any]) -> None:
    # OpenRouter's in-band {"error": ...} chunk: everything before it was delivered, then the mapped error.
    error = result.error
    stream_error = expected["stream_error"]
    assert isinstance(error, ProviderError), repr(error)
    assert error.message == stream_error["message"]
    if isinstance(stream_error.get("code"), int):
        assert error.status_code == stream_error["code"]
        assert isinstance(error, error_for_status(stream_error["code"]))
    assert result.text == expected["text"]
    assert (result.reasoning or None) == expected.get("reasoning_text")
    usage = parse_usage(error.body.get("usage")) if isinstance(error.body, dict) else None
    assert usage_as_expected(usage, expected["usage"]) == expected["usage"]


def _check_request(case: ConformanceCase, sim: ProviderSimulator, *, from_objects: bool = False) -> None:
    if case.name in NON_INFERENCE:
        return
    sent = sim.last_request(case.provider)
    recorded = case.request.get("body")
    differences = body_differences(normalise_body(sent.body), normalise_body(recorded))
    known = list(KNOWN_REQUEST_DIFFERENCES.get(case.name, ([], ""))[0])
    if from_objects:
        known += KNOWN_MESSAGE_OBJECT_DIFFERENCES.get(case.name, ([], ""))[0]
    assert differences == known, "request body differs from the recording:\n  " + "\n  ".join(differences)


def _chat_case_files() -> list[Any]:
    out = []
    for param in _case_files():
        path = param.values[0]
        if path is None or not path.name.startswith(("chat", "tools")):
            continue
        out.append(param)
    return out


@pytest.mark.conformance
@TRANSPORTS
@pytest.mark.parametrize("case_file", _chat_case_files())
async def test_conformance_request_from_message_objects(case_file: Path, sim: ProviderSimulator,
                                                        transport: str) -> None:
    """The same recorded requests, rebuilt from ``Message`` objects: our Message -> wire mapping must agree."""
    import pydantic

    from spoon_llm.types import to_messages

    case = ConformanceCase.from_file(case_file)
    call = call_from_recorded(case.request)
    try:
        messages = to_messages(_as_our_message_dicts(call.args[0]))
    except pydantic.ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"] if not str(p).startswith(("list[", "str"))) or e["type"]
                         for e in exc.errors()})
        pytest.skip(f"the recorded messages use wire fields our Message schema does not model: {fields}")
    provider = await _make_provider(case, sim, call.base_suffix, transport)
    sim.replay(case)
    try:
        method = getattr(provider, call.method)
        if call.method.endswith("_stream"):
            await _consume(method(messages, **call.kwargs))
        else:
            await method(messages, **call.kwargs)
    finally:
        await provider.cleanup()
    _check_request(case, sim, from_objects=True)


def _as_our_message_dicts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recorded wire messages in our dict spelling where ours differs: DeepSeek's ``reasoning_content`` is our
    ``reasoning``, an inline or URL ``file`` part is our ``document`` part."""
    out = []
    for message in messages:
        message = dict(message)
        if "reasoning_content" in message:
            message["reasoning"] = message.pop("reasoning_content")
        if isinstance(message.get("content"), list):
            parts = []
            for part in message["content"]:
                file = part.get("file") if isinstance(part, dict) and part.get("type") == "file" else None
                if isinstance(file, dict) and isinstance(file.get("file_data"), str):
                    data = file["file_data"]
                    document: dict[str, Any] = {"type": "document"}
                    if data.startswith("data:"):
                        header, document["data"] = data.split(",", 1)
                        document["media_type"] = header[5:].split(";")[0]
                    else:
                        document["url"] = data
                    if file.get("filename"):
                        document["filename"] = file["filename"]
                    part = document
                parts.append(part)
            message["content"] = parts
        out.append(message)
    return out
