"""The simulator's Bedrock replay through AWS's own client: botocore's ``bedrock-runtime`` client as the caller.

Each recorded interaction is queued on the simulator and sent with botocore (its real SigV4 signer, its JSON
serializer, its event-stream parser); what botocore reports must match the corpus' ``expected``. This proves the
replayed bytes (JSON bodies, re-encoded event streams, ``x-amzn-errortype``) are what Bedrock sends, independently
of our own decoder, and that the simulator accepts genuinely signed requests. Skipped without botocore (the
``bedrock`` extra).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from _bedrock_helpers import ACCESS_KEY, REGION, SECRET_KEY

from spoon_llm.testing import ProviderSimulator, find_conformance_dir
from spoon_llm.testing._replay import ConformanceCase

botocore_session = pytest.importorskip("botocore.session")
botocore_config = pytest.importorskip("botocore.config")
botocore_exceptions = pytest.importorskip("botocore.exceptions")

pytestmark = pytest.mark.conformance

ROOT = find_conformance_dir()
FILES = sorted((ROOT / "bedrock").glob("*.json")) if ROOT is not None else []
_BLOB_KEYS = ("bytes", "redactedContent")


@pytest.fixture(scope="module")
def client_for() -> Any:
    """A botocore ``bedrock-runtime`` client per simulator URL (built once: loading the model costs ~100 ms)."""
    clients: dict[str, Any] = {}

    def get(url: str) -> Any:
        if url not in clients:
            session = botocore_session.Session()
            clients[url] = session.create_client(
                "bedrock-runtime", region_name=REGION, endpoint_url=url, aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                config=botocore_config.Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        return clients[url]

    return get


def _blobs(value: Any) -> Any:
    """The recorded JSON with its base64 blob fields as bytes (botocore takes bytes and encodes them itself)."""
    if isinstance(value, dict):
        return {k: base64.b64decode(v) if k in _BLOB_KEYS and isinstance(v, str) else _blobs(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_blobs(v) for v in value]
    return value


def _converse_view(output: dict[str, Any], events: list[dict[str, Any]] | None) -> dict[str, Any]:
    if events is None:
        blocks = output["output"]["message"]["content"]
        text = "".join(b["text"] for b in blocks if "text" in b)
        calls = [{"id": b["toolUse"]["toolUseId"], "name": b["toolUse"]["name"], "arguments": b["toolUse"]["input"]}
                 for b in blocks if "toolUse" in b and b["toolUse"].get("type") != "server_tool_use"]
        return {"text": text, "tool_calls": calls, "finish_reason": output["stopReason"],
                "usage": output.get("usage")}
    text, finish, usage = "", None, None
    calls: dict[int, dict[str, Any]] = {}
    for event in events:
        if "contentBlockStart" in event and "toolUse" in event["contentBlockStart"]["start"]:
            start = event["contentBlockStart"]
            use = start["start"]["toolUse"]
            calls[start["contentBlockIndex"]] = {"id": use["toolUseId"], "name": use["name"], "arguments": ""}
        elif "contentBlockDelta" in event:
            delta = event["contentBlockDelta"]["delta"]
            text += delta.get("text", "")
            if "toolUse" in delta:
                calls[event["contentBlockDelta"]["contentBlockIndex"]]["arguments"] += delta["toolUse"]["input"]
        elif "messageStop" in event:
            finish = event["messageStop"]["stopReason"]
        elif "metadata" in event:
            usage = event["metadata"].get("usage")
    tool_calls = [{**c, "arguments": json.loads(c["arguments"]) if c["arguments"] else {}}
                  for _, c in sorted(calls.items())]
    return {"text": text, "tool_calls": tool_calls, "finish_reason": finish, "usage": usage}


def _invoke_view(message: dict[str, Any] | None, events: list[dict[str, Any]] | None) -> dict[str, Any]:
    if message is not None:
        content = message["content"]
        return {"text": "".join(b["text"] for b in content if b["type"] == "text"),
                "tool_calls": [{"id": b["id"], "name": b["name"], "arguments": b["input"]}
                               for b in content if b["type"] == "tool_use"],
                "finish_reason": message["stop_reason"], "output_tokens": message["usage"]["output_tokens"]}
    text, finish, output_tokens = "", None, None
    calls: dict[int, dict[str, Any]] = {}
    for event in events or ():
        kind = event["type"]
        if kind == "content_block_start" and event["content_block"]["type"] == "tool_use":
            block = event["content_block"]
            calls[event["index"]] = {"id": block["id"], "name": block["name"], "arguments": ""}
        elif kind == "content_block_delta":
            delta = event["delta"]
            text += delta.get("text", "")
            if delta["type"] == "input_json_delta":
                calls[event["index"]]["arguments"] += delta["partial_json"]
        elif kind == "message_delta":
            finish = event["delta"].get("stop_reason") or finish
            output_tokens = event["usage"]["output_tokens"]
    tool_calls = [{**c, "arguments": json.loads(c["arguments"]) if c["arguments"] else {}}
                  for _, c in sorted(calls.items())]
    return {"text": text, "tool_calls": tool_calls, "finish_reason": finish, "output_tokens": output_tokens}


def _cases() -> list[Any]:
    if not FILES:
        return [pytest.param(None, marks=pytest.mark.skip(reason="conformance corpus not found"))]
    return [pytest.param(path, id=path.stem) for path in FILES]


@pytest.mark.parametrize("path", _cases())
def test_botocore_reads_the_replay_as_recorded(path: Path, sim: ProviderSimulator, client_for: Any) -> None:
    case = ConformanceCase.from_file(path)
    client = client_for(sim.base_url)
    sim.replay(case)
    model = unquote(case.request["path"].split("/")[2])
    operation = case.request["path"].rsplit("/", 1)[1]
    body = case.request["body"]
    expected = case.expected

    def call() -> dict[str, Any]:
        if operation.startswith("invoke"):
            raw = json.dumps(body).encode()
            if operation == "invoke":
                answer = client.invoke_model(modelId=model, body=raw, contentType="application/json")
                return _invoke_view(json.loads(answer["body"].read()), None)
            stream = client.invoke_model_with_response_stream(modelId=model, body=raw, contentType="application/json")
            events = [json.loads(e["chunk"]["bytes"]) for e in stream["body"]]
            return _invoke_view(None, events)
        params = {"modelId": model, **_blobs(body)}
        if operation == "converse":
            return _converse_view(client.converse(**params), None)
        return _converse_view({}, list(client.converse_stream(**params)["stream"]))

    if case.kind == "error":
        with pytest.raises(botocore_exceptions.ClientError) as info:
            call()
        error = info.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == expected["status"]
        assert error["Error"]["Message"] == expected["message"]
        if expected.get("error_type"):
            assert error["Error"]["Code"] == expected["error_type"]
        return
    got = call()
    assert got["text"] == expected["text"]
    assert got["tool_calls"] == [{k: c[k] for k in ("id", "name", "arguments")} for c in expected["tool_calls"]]
    assert got["finish_reason"] == expected["finish_reason"]
    if "usage" in got:
        usage = got["usage"]
        assert (usage or {}).get("inputTokens") == expected["usage"]["input_tokens"]
        assert (usage or {}).get("outputTokens") == expected["usage"]["output_tokens"]
    else:
        assert got["output_tokens"] == expected["usage"]["output_tokens"]
