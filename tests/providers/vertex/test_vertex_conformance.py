"""Replay every recorded Vertex AI interaction of the shared corpus through VertexProvider, on both transports.

For each file the provider is configured with the project, location and API version of the recorded path, the
recorded request body is mapped back to our messages and keyword arguments (the Gemini conformance helpers:
Vertex AI speaks the same format), the simulator answers with the recorded response over a real socket, and:

* the normalised result equals ``expected`` (text and stream deltas, tool calls, native finish reason, usage,
  reasoning, block reason; errors by class, status, ``error.status``, code and message);
* the request arrived on the recorded path (query aside) with a bearer token, and its body equals the recorded
  one on the fields the API reads.

Known differences, documented rather than hidden:

* ``finishReason`` numbers (recordings made with ``$alt=json;enum-encoding=int``, 8 files) are reported by
  name: ``native_finish_reason`` is a string in our types, and ``"STOP"`` means the same to every caller as
  ``1`` (aiplatform's Candidate.FinishReason numbering); the test compares through that table.
* We do not ask for ``enum-encoding=int`` ourselves, so the recorded query string is not sent. The same
  recordings give function schema types as numbers (``"type": 6`` for OBJECT) and one gives file parts in
  snake_case (``file_uri``); we send names and camelCase, which the API reads the same (proto JSON accepts both):
  :func:`canonical` rewrites the recorded body that way before it is mapped and compared.
* One recording sends the role ``invalid_role`` to provoke its 400; our message roles cannot say that, so that
  body travels whole in ``extra_body`` (and is then sent exactly as recorded).
* Function calls the API sent without an id get a made-up one (``gemini-call-...``), as on the Gemini provider.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_gemini_conformance import (  # type: ignore[import-not-found]
    Unrepresentable,
    _check_error,
    _run,
    check_response,
    normalise_request,
    to_call,
)

from spoon_llm.providers.gemini._decode import _FINISH_NAMES
from spoon_llm.testing import ProviderSimulator, find_conformance_dir
from spoon_llm.testing._replay import ConformanceCase
from spoon_llm.types import Message

pytestmark = pytest.mark.conformance

ROOT = find_conformance_dir()
FILES = sorted((ROOT / "vertex").glob("*.json")) if ROOT is not None else []


def _cases() -> list[Any]:
    if not FILES:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason="conformance corpus not found (set SPOON_LLM_CONFORMANCE_DIR or place ../shared/conformance)"))]
    return [pytest.param(path, id=path.stem) for path in FILES]


def test_corpus_folder_is_whole() -> None:
    """All 31 recorded Vertex AI files are replayed (a silently shrinking folder would hide gaps)."""
    if ROOT is None:
        pytest.skip("conformance corpus not found")
    assert len(FILES) == 31


def location_of(path: str) -> dict[str, Any]:
    """Provider settings that reproduce a recorded path: API version, project, location, model."""
    version, _, rest = path.partition("?")[0][1:].partition("/")
    settings: dict[str, Any] = {"api_version": version}
    if rest.startswith("projects/"):
        parts = rest.split("/")
        settings.update(project=parts[1], vertex_location=parts[3])
    settings["model"] = rest.split("/models/", 1)[1].split(":", 1)[0]
    return settings


# google.cloud.aiplatform Type enum, by number (enum-encoding=int recordings).
_TYPE_NAMES = ("type_unspecified", "string", "number", "integer", "boolean", "array", "object", "null")
_PART_KEYS = {"file_uri": "fileUri", "mime_type": "mimeType", "file_data": "fileData", "inline_data": "inlineData"}


def _schema_names(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (_TYPE_NAMES[v] if k == "type" and isinstance(v, int) else _schema_names(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_schema_names(v) for v in node]
    return node


def _camel_parts(node: Any) -> Any:
    if isinstance(node, dict):
        return {_PART_KEYS.get(k, k): _camel_parts(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_camel_parts(v) for v in node]
    return node


def canonical(body: dict[str, Any]) -> dict[str, Any]:
    """The recorded body with schema type numbers as names and snake_case part fields in camelCase."""
    out = dict(body)
    if "contents" in out:
        out["contents"] = _camel_parts(out["contents"])
    if "tools" in out:
        out["tools"] = _schema_names(out["tools"])
    return out


def by_name(expected: dict[str, Any]) -> dict[str, Any]:
    """``expected`` with a numeric finish reason given by name (see the module docstring)."""
    finish = expected.get("finish_reason")
    if isinstance(finish, int):
        return {**expected, "finish_reason": _FINISH_NAMES[finish]}
    return expected


@pytest.mark.parametrize("path", _cases())
async def test_recorded_interaction(path: Path, sim: ProviderSimulator, make_provider: Any) -> None:
    """Both transports: responses equal ``expected``; the request went to the recorded path with its body."""
    case = ConformanceCase.from_file(path)
    request_path = case.request["path"]
    settings = location_of(request_path)
    model = settings["model"]
    body = canonical(case.request["body"])
    expected = by_name(case.expected)
    stream = "streamGenerateContent" in request_path
    provider = await make_provider(**settings)
    sim.replay(case)

    if request_path.partition("?")[0].endswith(":embedContent"):
        texts = [part["text"] for part in body["content"]["parts"]]
        result = await provider.embed(texts, model=model)
        assert len(result.embeddings) == expected["n_embeddings"]
        assert sorted({len(v) for v in result.embeddings}) == expected["dimensions"]
        assert result.usage is not None and result.usage.input_tokens > 0
        sent = sim.requests_for("vertex", "embeddings")[0]
        assert sent.body == body
        assert sent.path == request_path.partition("?")[0]
        return

    try:
        if any(content.get("role", "user") not in ("user", "model") for content in body.get("contents", ())):
            raise Unrepresentable("a role our messages cannot express")
        messages, kwargs = to_call(body, model)
    except Unrepresentable:
        messages, kwargs = [Message.user("x")], {"model": model, "extra_body": body}

    if case.kind == "error":
        await _check_error(_run(provider, stream, messages, kwargs), expected)
    else:
        response, deltas = await _run(provider, stream, messages, kwargs)
        check_response(response, expected, deltas)
        assert response.provider == "vertex"

    sent = sim.requests_for("vertex", "chat")[0]
    assert sent.path == request_path.partition("?")[0]
    assert sent.header("authorization") == "Bearer ***0001"
    assert normalise_request(sent.body) == normalise_request(body)
