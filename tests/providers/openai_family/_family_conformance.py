"""Replay one recorded OpenAI-compatible interaction through one of our providers and compare with ``expected``.

Shared by the ``openai_family`` and ``azure`` conformance tests: the simulator serves the recorded response over a
real socket, the call is rebuilt from the recorded request, the normalised result must equal ``expected`` (text,
tool calls with parsed arguments, native finish reason, usage, reasoning; streams by their concatenated deltas;
errors by class, status, type, code and message), then the body we sent is compared with the recorded one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from _openai_compat_helpers import (
    StreamResult,
    WireCall,
    body_differences,
    normalise_body,
    response_summary,
    stream_summary,
    usage_as_expected,
)

from spoon_llm.errors import LLMError, ProviderError, error_for_status
from spoon_llm.providers.openai._decode import parse_usage
from spoon_llm.testing import ConformanceCase, ProviderSimulator

ROOT = Path(os.environ.get("SPOON_LLM_CONFORMANCE_DIR")
            or Path(__file__).resolve().parents[3] / ".." / "shared" / "conformance").resolve()


def case_files(folders: tuple[str, ...]) -> list[Any]:
    """One pytest param per corpus file of ``folders`` (a clear skip when the corpus is absent)."""
    if not ROOT.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"conformance corpus not found at {ROOT}"))]
    files = []
    for folder in folders:
        found = sorted((ROOT / folder).glob("*.json"))
        if not found:
            files.append(pytest.param(None, id=folder, marks=pytest.mark.skip(reason=f"{ROOT / folder} is absent")))
        files.extend(pytest.param(path, id=f"{folder}/{path.stem}") for path in found)
    return files


async def consume(stream: Any) -> StreamResult:
    """Every chunk of a stream, and the error that ended it (if any)."""
    result = StreamResult(chunks=[])
    try:
        async for chunk in stream:
            result.chunks.append(chunk)
    except LLMError as exc:
        result.error = exc
    return result


def check_error(error: BaseException | None, expected: dict[str, Any]) -> None:
    """The mapped error carries the recorded status, type, code and message."""
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


def check_summary(summary: dict[str, Any], expected: dict[str, Any]) -> None:
    """A complete answer matches ``expected`` field by field."""
    assert summary["text"] == expected["text"]
    assert summary["tool_calls"] == expected["tool_calls"]
    assert summary["finish_reason"] == expected["finish_reason"]
    assert summary["n_choices"] == max(expected.get("n_choices", 1), 1)
    assert summary["reasoning_text"] == expected.get("reasoning_text")
    assert summary["refusal"] == expected.get("refusal")


def check_stream_error(result: StreamResult, expected: dict[str, Any]) -> None:
    """An in-band error in a 200 stream: what came before it was delivered, then the mapped error."""
    error = result.error
    stream_error = expected["stream_error"]
    assert isinstance(error, ProviderError), repr(error)
    assert error.message == stream_error["message"]
    for key in ("type", "code"):
        if isinstance(stream_error.get(key), str):
            assert getattr(error, "error_" + key) == stream_error[key]
    assert result.text == expected["text"]
    assert (result.reasoning or None) == expected.get("reasoning_text")
    usage = parse_usage(error.body.get("usage")) if isinstance(error.body, dict) else None
    assert usage_as_expected(usage, expected["usage"]) == expected["usage"]


async def run_case(case: ConformanceCase, provider: Any, call: WireCall) -> None:
    """Drive ``provider`` with the recorded call and compare the outcome with ``expected``."""
    expected = case.expected
    method = getattr(provider, call.method)
    if call.method.endswith("_stream"):
        result = await consume(method(*call.args, **call.kwargs))
        if case.status >= 400:
            check_error(result.error, expected)
        elif "stream_error" in expected:
            check_stream_error(result, expected)
        else:
            assert result.error is None, repr(result.error)
            check_summary(stream_summary(result), expected)
            assert result.final is not None
            assert usage_as_expected(result.final.usage, expected["usage"]) == expected["usage"]
        return
    error: BaseException | None = None
    try:
        response = await method(*call.args, **call.kwargs)
    except LLMError as exc:
        error = exc
    if case.status >= 400:
        check_error(error, expected)
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
        check_summary(response_summary(response), expected)
        assert usage_as_expected(response.usage, expected["usage"]) == expected["usage"]


def check_request(case: ConformanceCase, sim: ProviderSimulator, vendor: str, known: list[str],
                  *, ignore: tuple[str, ...] = ()) -> None:
    """The body we sent equals the recorded one, up to the listed ``known`` differences.

    ``ignore``: top-level keys compared only when the recording has them (e.g. the informational ``model`` of an
    Azure deployment request, which some clients leave out).
    """
    sent = normalise_body(sim.last_request(vendor).body)
    recorded = normalise_body(case.request.get("body"))
    if isinstance(recorded, dict):
        for tool in recorded.get("tools") or ():
            # Mistral's clients leave out "type": "function" (its API default); we always send it.
            if isinstance(tool, dict) and "function" in tool:
                tool.setdefault("type", "function")
    for key in ignore:
        if isinstance(recorded, dict) and key not in recorded and isinstance(sent, dict):
            sent.pop(key, None)
    differences = body_differences(sent, recorded)
    assert differences == known, "request body differs from the recording:\n  " + "\n  ".join(differences)


def as_message_objects(messages: list[dict[str, Any]]) -> Any:
    """The recorded wire messages as our ``Message`` objects; skips when they use wire fields we do not model."""
    import pydantic

    from spoon_llm.types import to_messages

    try:
        return to_messages(messages)
    except pydantic.ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"] if not str(p).startswith(("list[", "str"))) or e["type"]
                         for e in exc.errors()})
        pytest.skip(f"the recorded messages use wire fields our Message schema does not model: {fields}")
