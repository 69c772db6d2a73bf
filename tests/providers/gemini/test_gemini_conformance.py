"""Replay every recorded Gemini interaction of the shared corpus through GeminiProvider.

For each file: the recorded request body is mapped back to our messages and keyword arguments
(:func:`to_call`), the provider sends it through google-genai over a real socket to the simulator, which answers
with the recorded response; the normalised result must equal ``expected`` and the request the simulator
received must equal the recorded one on the fields the API cares about (:func:`normalise_request`). A second
test replays every file through the fallback transport (google-genai's public typed methods) and checks the
responses the same way.

Known differences, documented rather than hidden:

* Function calls that the API sent without an id get a made-up one (``gemini-call-...``) so that tool results
  can refer to them; ``expected`` has ``id: null`` there. Such ids are never sent back to Gemini.
* Function declarations given in Gemini's own schema format are re-read as JSON schemas by our converter;
  type names are compared case-insensitively.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from spoon_llm.errors import AuthenticationError, ProviderError, error_for_status
from spoon_llm.providers.gemini._convert import SYNTHETIC_PREFIX
from spoon_llm.streaming import collect_stream
from spoon_llm.testing import ProviderSimulator, find_conformance_dir
from spoon_llm.testing._replay import ConformanceCase
from spoon_llm.types import DocumentPart, ImagePart, LLMResponse, LLMResponseChunk, Message, TextPart, ToolCall

pytestmark = pytest.mark.conformance

ROOT = find_conformance_dir()
FILES = sorted((ROOT / "gemini").glob("*.json")) if ROOT is not None else []

_CONFIG_TYPED = {"temperature": "temperature", "topP": "top_p", "topK": "top_k", "maxOutputTokens": "max_tokens",
                 "stopSequences": "stop", "thinkingConfig": "thinking", "responseModalities": "response_modalities",
                 "seed": "seed", "presencePenalty": "presence_penalty", "frequencyPenalty": "frequency_penalty"}
_PLAIN_MODEL_KEYS = {"text", "functionCall"}


class Unrepresentable(Exception):
    """The recorded request uses a shape our message schema cannot express."""


def _user_part(part: dict[str, Any]) -> Any:
    if "text" in part and len(part) == 1:
        return TextPart(text=part["text"])
    if "inlineData" in part and len(part) == 1:
        blob = part["inlineData"]
        cls = ImagePart if blob["mimeType"].startswith("image/") else DocumentPart
        return cls(data=blob["data"], media_type=blob["mimeType"])
    if "fileData" in part and len(part) == 1:
        blob = part["fileData"]
        cls = ImagePart if blob.get("mimeType", "").startswith("image/") else DocumentPart
        return cls(url=blob["fileUri"], media_type=blob.get("mimeType"))
    raise Unrepresentable(f"user part {sorted(part)}")


def to_call(body: dict[str, Any], model: str) -> tuple[list[Message], dict[str, Any]]:
    """Our messages and keyword arguments for a recorded ``generateContent`` body."""
    messages: list[Message] = []
    for part in (body.get("systemInstruction") or {}).get("parts", []):
        messages.append(Message.system(part["text"]))
    pending_ids: list[tuple[str, str]] = []  # (name, id) of calls made without an id, answered in order
    counter = 0
    for content in body.get("contents", []):
        role = content.get("role", "user")
        parts = content["parts"]
        if role == "model":
            text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
            calls = []
            for part in parts:
                call = part.get("functionCall")
                if call is None:
                    continue
                call_id = call.get("id")
                if not call_id:
                    call_id = f"{SYNTHETIC_PREFIX}{counter}"
                    counter += 1
                    pending_ids.append((call["name"], call_id))
                signature = part.get("thoughtSignature")
                data = {"gemini": {"thoughtSignature": signature}} if signature else None
                calls.append(ToolCall(id=call_id, function={"name": call["name"],  # type: ignore[arg-type]
                                                            "arguments": json.dumps(call.get("args") or {})},
                                      provider_data=data))
            plain = all(set(p) <= _PLAIN_MODEL_KEYS for p in parts) and sum("text" in p for p in parts) <= 1
            messages.append(Message(role="assistant", content=text or None, tool_calls=calls or None,
                                    provider_data=None if plain else {"gemini": {"parts": parts}}))
            continue
        user_parts: list[Any] = []
        for part in parts:
            response = part.get("functionResponse")
            if response is None:
                user_parts.append(_user_part(part))
                continue
            if user_parts:
                messages.append(Message(role="user", content=user_parts))
                user_parts = []
            call_id = response.get("id")
            if not call_id:
                index = next(i for i, (name, _) in enumerate(pending_ids) if name == response["name"])
                call_id = pending_ids.pop(index)[1]
            messages.append(Message(role="tool", tool_call_id=call_id, name=response["name"],
                                    content=json.dumps(response.get("response") or {})))
        if user_parts:
            if len(user_parts) == 1 and isinstance(user_parts[0], TextPart):
                messages.append(Message.user(user_parts[0].text))
            else:
                messages.append(Message(role="user", content=user_parts))
    kwargs: dict[str, Any] = {"model": model}
    config = dict(body.get("generationConfig") or {})
    for theirs, ours in _CONFIG_TYPED.items():
        if theirs in config:
            kwargs[ours] = config.pop(theirs)
    if config.get("responseMimeType") == "application/json":
        config.pop("responseMimeType")
        kwargs["json"] = True
        if "responseSchema" in config:
            kwargs["json_schema"] = config.pop("responseSchema")
        elif "responseJsonSchema" in config:
            kwargs["json_schema"] = config.pop("responseJsonSchema")
            kwargs["schema_mode"] = "json_schema"
    tools: list[Any] = []
    for tool in body.get("tools", []):
        declarations = tool.get("functionDeclarations", tool.get("function_declarations"))
        if declarations is None:
            tools.append(tool)
            continue
        for declaration in declarations:
            schema = declaration.get("parametersJsonSchema", declaration.get("parameters_json_schema"))
            if schema is not None:
                kwargs["schema_mode"] = "json_schema"
            else:
                schema = declaration.get("parameters", {"type": "object", "properties": {}})
            tools.append({"name": declaration["name"], "description": declaration.get("description"),
                          "parameters": schema})
    if tools:
        kwargs["tools"] = tools
    if "toolConfig" in body:
        kwargs["tool_choice"] = body["toolConfig"]
    if "safetySettings" in body:
        kwargs["safety_settings"] = body["safetySettings"]
    extra = {k: v for k, v in body.items() if k not in ("contents", "systemInstruction", "generationConfig", "tools",
                                                         "toolConfig", "safetySettings")}
    if config:
        extra["generationConfig"] = config
    if extra:
        kwargs["extra_body"] = extra
    return messages, kwargs


def _norm_schema(node: Any) -> Any:
    if isinstance(node, dict):
        return {("propertyOrdering" if k == "property_ordering" else k):
                (v.lower() if k == "type" and isinstance(v, str) else _norm_schema(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_norm_schema(v) for v in node]
    return node


def normalise_request(body: dict[str, Any]) -> dict[str, Any]:
    """A body with equivalent spellings made equal (snake/camel declaration keys, type case, system role)."""
    out = dict(body)
    if "systemInstruction" in out:
        out["systemInstruction"] = {"parts": out["systemInstruction"]["parts"]}
    contents = []
    for content in body.get("contents", []):
        role = content.get("role", "user")
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"] = contents[-1]["parts"] + content["parts"]
        else:
            contents.append({"role": role, "parts": list(content["parts"])})
    out["contents"] = contents
    tools = []
    declarations = []
    for tool in body.get("tools", []):
        found = tool.get("functionDeclarations", tool.get("function_declarations"))
        if found is None:
            tools.append(tool)
            continue
        for declaration in found:
            decl = dict(declaration)
            if "parameters_json_schema" in decl:
                decl["parametersJsonSchema"] = decl.pop("parameters_json_schema")
            declarations.append(_norm_schema(decl))
    if declarations:
        tools.insert(0, {"functionDeclarations": declarations})
    if tools:
        out["tools"] = tools
    if not out.get("generationConfig"):
        out.pop("generationConfig", None)
    if "generationConfig" in out:
        config = dict(out["generationConfig"])
        if "responseSchema" in config:
            config["responseSchema"] = _norm_schema(config["responseSchema"])
        out["generationConfig"] = config
    return out


def _cases() -> list[Any]:
    if not FILES:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason="conformance corpus not found (set SPOON_LLM_CONFORMANCE_DIR or place ../shared/conformance)"))]
    return [pytest.param(path, id=path.stem) for path in FILES]


async def _run(provider: Any, stream: bool, messages: list[Message], kwargs: dict[str, Any]
               ) -> tuple[LLMResponse, list[str] | None]:
    """Call the provider as the recording did; a stream is folded back into one response plus its deltas."""
    if not stream:
        return await provider.chat(messages, **kwargs), None
    deltas: list[str] = []

    async def tap() -> AsyncIterator[LLMResponseChunk]:
        async for chunk in provider.chat_stream(messages, **kwargs):
            if chunk.kind == "text":
                deltas.append(chunk.delta)
            yield chunk

    return await collect_stream(tap()), deltas


def check_response(response: LLMResponse, expected: dict[str, Any], deltas: list[str] | None) -> None:
    assert response.content == expected["text"]
    if deltas is not None:
        assert "".join(deltas) == expected["text"]
    assert len(response.tool_calls) == len(expected["tool_calls"])
    for ours, theirs in zip(response.tool_calls, expected["tool_calls"], strict=True):
        assert ours.name == theirs["name"]
        assert ours.arguments == theirs["arguments"]
        if theirs["id"] is None:
            assert ours.id is not None and ours.id.startswith(SYNTHETIC_PREFIX)
        else:
            assert ours.id == theirs["id"]
    assert response.native_finish_reason == expected["finish_reason"]
    usage = expected["usage"]
    if usage is None:
        assert response.usage is None
    else:
        ours = response.usage
        assert ours is not None
        assert ours.input_tokens == usage.get("input_tokens", 0)
        assert ours.output_tokens - ours.reasoning_tokens == usage.get("output_tokens", 0)
        assert ours.total_tokens == usage.get("total_tokens", ours.input_tokens + ours.output_tokens)
        assert ours.cached_input_tokens == usage.get("cached_input_tokens", 0)
        assert ours.reasoning_tokens == usage.get("reasoning_tokens", 0)
    assert response.reasoning == expected.get("reasoning_text")
    assert response.metadata.get("block_reason") == expected.get("block_reason")
    if expected.get("n_choices", 1) > 1:
        assert response.metadata["n_candidates"] == expected["n_choices"]


@pytest.mark.parametrize("path", _cases())
async def test_recorded_interaction(path: Path, sim: ProviderSimulator, make_provider: Any) -> None:
    """Each transport (native, and the SDK's request layer): responses equal ``expected`` and the request sent
    equals the recorded one."""
    await replay(path, sim, make_provider, sdk_api="raw", compare_request=True)


@pytest.mark.parametrize("transport", ["sdk"])
@pytest.mark.parametrize("path", _cases())
async def test_recorded_response_through_public_sdk_api(path: Path, sim: ProviderSimulator, make_provider: Any
                                                        ) -> None:
    """The fallback transport (google-genai's public typed methods) decodes every recording the same way.

    Its requests are not compared: the SDK re-serialises them from its models (snake_case field names such as
    ``mime_type``, URL-safe base64), which the API treats as equal but a JSON comparison does not.
    """
    await replay(path, sim, make_provider, sdk_api="public", compare_request=False)


async def replay(path: Path, sim: ProviderSimulator, make_provider: Any, *, sdk_api: str,
                 compare_request: bool) -> None:
    case = ConformanceCase.from_file(path)
    request_path = case.request["path"]
    model = request_path.split("/models/", 1)[1].split(":", 1)[0]
    body = case.request["body"]
    expected = case.expected
    stream = "streamGenerateContent" in request_path
    provider = await make_provider(options={"gemini_sdk_api": sdk_api})
    sim.replay(case)

    if "Embed" in request_path:
        requests = body["requests"]
        first = requests[0]
        kwargs = {"model": model, "task_type": first.get("taskType"), "dimensions": first.get("outputDimensionality")}
        texts = [r["content"]["parts"][0]["text"] for r in requests]
        if case.kind == "error":
            await _check_error(provider.embed(texts, **kwargs), expected)
        else:
            result = await provider.embed(texts, **kwargs)
            assert len(result.embeddings) == expected["n_embeddings"]
            assert sorted({len(v) for v in result.embeddings}) == expected["dimensions"]
        if compare_request:
            assert sim.requests_for("gemini", "embeddings")[0].body["requests"] == requests
        return

    try:
        messages, kwargs = to_call(body, model)
        representable = True
    except Unrepresentable:
        messages, kwargs = [Message.user("x")], {"model": model, "extra_body": body}
        representable = False

    if case.kind == "error":
        await _check_error(_run(provider, stream, messages, kwargs), expected)
    else:
        response, deltas = await _run(provider, stream, messages, kwargs)
        check_response(response, expected, deltas)

    sent = sim.requests_for("gemini", "chat")[0]
    assert ("streamGenerateContent" in sent.path) == stream
    if representable and compare_request:
        assert normalise_request(sent.body) == normalise_request(body)


async def _check_error(call: Any, expected: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as info:
        await call
    error = info.value
    if expected.get("error_type") == "INVALID_ARGUMENT" and "API key" in str(expected.get("message")):
        assert isinstance(error, AuthenticationError)  # a bad key is a 400 with reason API_KEY_INVALID
    else:
        assert isinstance(error, error_for_status(expected["status"]))
    assert error.status_code == expected["status"]
    assert error.error_type == expected.get("error_type")
    assert error.error_code == str(expected.get("error_code"))
    assert error.message == expected.get("message")
