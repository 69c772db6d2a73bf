"""The simulator's JSON answers have the field structure of real recorded answers of the same kind.

For each provider and kind (and each SSE event type), the key paths of the simulator's answer must
all occur in some recorded answer (no invented fields), and must include every path that all
recorded answers share (no missing fields) where there are at least 3 recordings to learn that from.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx2
import pytest

from spoon_llm.testing import ProviderSimulator, Reply, ToolCall, load_conformance

pytestmark = pytest.mark.conformance

MIN_SAMPLES_FOR_REQUIRED = 3
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
OPENAI_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
CALL = ToolCall("get_weather", {"city": "Paris"})


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value (``a.b``, lists as ``[]``), ignoring tool-argument contents."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            if key not in ("args", "input", "metadata"):  # free-form objects: their keys are the caller's
                out |= key_paths(sub, path)
    elif isinstance(value, list):
        for sub in value:
            out |= key_paths(sub, prefix + "[]")
    return out


def sse_groups(items: list[tuple[str | None, str]]) -> dict[str, set[str]]:
    """Key paths per event group: the SSE event name, or the payload's ``object``, or ``chunk``."""
    groups: dict[str, set[str]] = defaultdict(set)
    for event, data in items:
        if data.strip() in ("", "[DONE]"):
            continue
        try:
            payload = json.loads(data)
        except ValueError:
            continue
        name = event or (payload.get("object") if isinstance(payload, dict) else None) or "chunk"
        groups[name] |= key_paths(payload)
    return groups


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    items = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            items.append((event, "\n".join(data)))
    return items


def recorded_groups(provider: str, kind: str, root: Path) -> dict[str, list[set[str]]]:
    groups: dict[str, list[set[str]]] = defaultdict(list)
    for case in load_conformance(provider, kind=kind, root=root):
        if case.status != 200:
            continue
        if case.is_stream:
            items = [(i.get("event"), i["data"]) for i in case.response["sse"] if "data" in i]
            for name, paths in sse_groups(items).items():
                if name != "error":  # an in-band error chunk is not part of a normal answer
                    groups[name].append(paths)
        else:
            groups["body"].append(key_paths(case.response["body"]))
    return groups


def simulate(sim: ProviderSimulator, provider: str, kind: str) -> dict[str, set[str]]:
    """Ask the simulator for an answer of ``kind`` and return its key paths per group."""
    stream = kind.endswith("_stream")
    tools = kind.startswith("tools")
    if tools:
        sim.script(provider, Reply(tool_calls=[CALL]), times=1)
    with httpx2.Client(base_url=sim.base_url, timeout=10) as raw:
        if provider == "anthropic":
            body: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": MESSAGES}
            if stream:
                body["stream"] = True
            response = raw.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
        elif provider == "gemini":
            if kind == "embeddings":
                body = {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "x"}]}}]}
                response = raw.post("/v1beta/models/gemini-embedding-001:batchEmbedContents", json=body)
            else:
                body = {"contents": [{"role": "user", "parts": [{"text": MESSAGES[0]["content"]}]}]}
                method = "streamGenerateContent?alt=sse" if stream else "generateContent"
                response = raw.post(f"/v1beta/models/gemini-2.5-flash:{method}", json=body)
        else:
            prefix = {"openai": "/v1", "openrouter": "/api/v1", "deepseek": ""}[provider]
            if kind == "embeddings":
                response = raw.post(f"{prefix}/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
            elif kind == "completion":
                response = raw.post(f"{prefix}/completions", json={"model": "davinci-002", "prompt": "x"})
            else:
                body = {"model": "m", "messages": MESSAGES, "stream": stream}
                if stream:
                    body["stream_options"] = {"include_usage": True}
                if tools:
                    body["tools"] = OPENAI_TOOLS
                response = raw.post(f"{prefix}/chat/completions", json=body)
    assert response.status_code == 200
    if response.headers["content-type"].startswith("text/event-stream"):
        return sse_groups(parse_sse(response.text))
    return {"body": key_paths(response.json())}


KINDS = [
    (p, k)
    for p, kinds in {
        "openai": ("chat", "chat_stream", "tools", "tools_stream", "embeddings", "completion"),
        "anthropic": ("chat", "chat_stream", "tools", "tools_stream"),
        "gemini": ("chat", "chat_stream", "tools", "tools_stream", "embeddings"),
        "openrouter": ("chat", "chat_stream", "tools", "tools_stream"),
        "deepseek": ("chat", "chat_stream", "tools"),
    }.items()
    for k in kinds
]


@pytest.mark.parametrize(("provider", "kind"), KINDS, ids=[f"{p}-{k}" for p, k in KINDS])
def test_answer_structure_matches_recordings(
    provider: str, kind: str, conformance_dir: Path, sim: ProviderSimulator
) -> None:
    recorded = recorded_groups(provider, kind, conformance_dir)
    if not recorded:
        pytest.skip(f"no recorded {provider} {kind} answers")
    simulated = simulate(sim, provider, kind)
    for group, paths in simulated.items():
        samples = recorded.get(group)
        assert samples, f"{provider} {kind}: the simulator sends a {group!r} event no recording has"
        invented = paths - set.union(*samples)
        assert not invented, f"{provider} {kind} {group}: fields no recorded answer has: {sorted(invented)}"
        if len(samples) >= MIN_SAMPLES_FOR_REQUIRED:
            missing = set.intersection(*samples) - paths
            assert not missing, f"{provider} {kind} {group}: fields every recording has are missing: {sorted(missing)}"
    common_groups = {
        g
        for g, s in recorded.items()
        if len(s) >= MIN_SAMPLES_FOR_REQUIRED and len(s) == max(map(len, recorded.values()))
    }
    assert common_groups <= set(simulated), f"{provider} {kind}: event types missing: {common_groups - set(simulated)}"
