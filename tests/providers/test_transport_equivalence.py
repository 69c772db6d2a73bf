"""Both transports report the same thing: every conformance file, replayed through ``sdk`` and ``native``.

For each recorded interaction of ``../shared/conformance`` (OpenAI, OpenRouter, DeepSeek, Anthropic, Gemini,
the OpenAI Responses API, Azure OpenAI, Mistral, Groq, xAI, Cerebras, Vertex AI) the
call is rebuilt from the recorded request exactly as the vendor's conformance test does, sent once per
transport to the simulator replaying the recorded answer, and what comes back is compared field by field:

* an answer: every field of ``LLMResponse`` / ``EmbeddingResponse`` (content, tool calls, usage with ``raw``,
  finish reasons, reasoning, refusal, cost, metadata...);
* a stream: every field of every chunk, in order, and the error that ended it, if any;
* an error: class, status, message, vendor type and code, retryability, Retry-After, rate-limit headers, body,
  partial content;

except what differs per request by nature: request ids, durations, timestamps, the ids we make up for Gemini
function calls.

The requests the simulator recorded from both transports are compared too (method, path, query, body, headers),
except the headers that name the client: ``user-agent`` and ``x-goog-api-client`` (ours on the native
transport), the SDKs' ``x-stainless-*`` telemetry, and connection-level ones (``host``, ``content-length``,
``connection``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from _transport_views import error_view, request_view, stable

from spoon_llm.errors import LLMError
from spoon_llm.testing import ConformanceCase, ProviderSimulator, find_conformance_dir
from spoon_llm.types import Message

_HERE = Path(__file__).resolve().parent
# The vendors' request-rebuilding helpers.
for _sub in ("openai_compat", "anthropic", "gemini", "openai_responses", "vertex"):
    if str(_HERE / _sub) not in sys.path:
        sys.path.insert(0, str(_HERE / _sub))

from _openai_compat_helpers import DEEPSEEK_KEY, OPENAI_KEY, OPENROUTER_KEY, call_from_recorded  # noqa: E402
from test_anthropic_conformance import Unrepresentable as AnthropicUnrepresentable  # noqa: E402
from test_anthropic_conformance import to_call as anthropic_call  # noqa: E402
from test_gemini_conformance import Unrepresentable as GeminiUnrepresentable  # noqa: E402
from test_gemini_conformance import to_call as gemini_call  # noqa: E402
from test_responses_conformance import to_call as responses_call  # noqa: E402
from test_vertex_conformance import canonical as vertex_canonical  # noqa: E402
from test_vertex_conformance import location_of as vertex_location_of  # noqa: E402

pytestmark = pytest.mark.conformance

ROOT = find_conformance_dir()
FOLDERS = ("openai", "openrouter", "deepseek", "anthropic", "gemini", "openai_responses", "azure", "mistral", "groq",
           "xai", "cerebras", "vertex")
_FAMILY = ("mistral", "groq", "xai", "cerebras")
def _cases() -> list[Any]:
    if ROOT is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason="conformance corpus not found"))]
    return [pytest.param(path, id=f"{folder}/{path.stem}")
            for folder in FOLDERS for path in sorted((ROOT / folder).glob("*.json"))]


# -- driving one transport ----------------------------------------------------------------------------------


async def _provider(case: ConformanceCase, sim: ProviderSimulator, transport: str, suffix: str = "") -> Any:
    from spoon_llm.registry import LLMProviderRegistry

    keys = {"openai": OPENAI_KEY, "openrouter": OPENROUTER_KEY, "deepseek": DEEPSEEK_KEY,
            "anthropic": "sk-ant-test-0000000000", "gemini": "AIzaSyTEST00000000000000000",
            "openai_responses": OPENAI_KEY, "azure": "azure-test-key-0000000001",
            **{name: f"{name}-test-key-0000000001" for name in _FAMILY}}
    bases = {"openai": sim.openai_base_url, "openrouter": sim.openrouter_base_url,
             "deepseek": sim.deepseek_base_url + suffix, "anthropic": sim.anthropic_base_url,
             "gemini": sim.gemini_base_url, "openai_responses": sim.base_url + suffix,
             "azure": sim.azure_endpoint, **{name: sim.compatible_base_url(name) for name in _FAMILY}}
    extra: dict[str, Any] = {}
    if case.provider == "vertex":  # the recording's API version, project and location; a bearer token, no key
        settings = vertex_location_of(case.request["path"])
        settings.pop("model")
        extra.update(settings, api_key=None, vertex_access_token="ya29.test-token-0001")
        bases["vertex"] = sim.base_url
        keys["vertex"] = ""
    if case.provider == "azure":  # the recording's api-version (its deployment is the model name, below)
        extra["api_version"] = case.request["path"].split("api-version=", 1)[1].split("&", 1)[0]
    registry = LLMProviderRegistry(load_plugins=False)
    return await registry.get_initialized_provider(case.provider, {
        "api_key": keys[case.provider], "base_url": bases[case.provider], "transport": transport, **extra})


def _call(case: ConformanceCase) -> tuple[str, tuple[Any, ...], dict[str, Any], str]:
    """Method, arguments and keywords reproducing the recorded request (as the conformance tests build them)."""
    body = case.request.get("body") or {}
    if case.provider == "anthropic":
        try:
            messages, kwargs = anthropic_call(body)
        except AnthropicUnrepresentable:
            messages, kwargs = [Message.user("x")], {"model": body["model"], "max_tokens": body["max_tokens"],
                                                     "extra_body": {k: v for k, v in body.items() if k != "stream"}}
        return ("chat_stream" if body.get("stream") else "chat"), (messages,), kwargs, ""
    if case.provider == "vertex":
        body = vertex_canonical(body)
        if case.request["path"].partition("?")[0].endswith(":embedContent"):
            texts = [part["text"] for part in body["content"]["parts"]]
            return "embed", (texts,), {"model": vertex_location_of(case.request["path"])["model"]}, ""
    if case.provider in ("gemini", "vertex"):
        path = case.request["path"]
        model = path.split("/models/", 1)[1].split(":", 1)[0]
        if "Embed" in path:
            first = body["requests"][0]
            texts = [r["content"]["parts"][0]["text"] for r in body["requests"]]
            return "embed", (texts,), {"model": model, "task_type": first.get("taskType"),
                                       "dimensions": first.get("outputDimensionality")}, ""
        try:
            messages, kwargs = gemini_call(body, model)
        except GeminiUnrepresentable:
            messages, kwargs = [Message.user("x")], {"model": model, "extra_body": body}
        return ("chat_stream" if "streamGenerateContent" in path else "chat"), (messages,), kwargs, ""
    if case.provider == "openai_responses":  # suffix: the recorded base path (/v1, or Azure's /openai/v1)
        messages, kwargs = responses_call(body)
        suffix = case.request["path"].rsplit("/responses", 1)[0]
        return ("chat_stream" if body.get("stream") else "chat"), (messages,), kwargs, suffix
    call = call_from_recorded(case.request)
    if case.provider == "azure":
        call.kwargs.setdefault("model", case.request["path"].split("/")[3])
    return call.method, call.args, call.kwargs, call.base_suffix


async def run_once(case: ConformanceCase, sim: ProviderSimulator, transport: str) -> dict[str, Any]:
    """What one transport reports for ``case``, and the request it sent."""
    method, args, kwargs, suffix = _call(case)
    provider = await _provider(case, sim, transport, suffix)
    assert provider.transport_name == transport
    sim.reset()
    sim.replay(case)
    outcome: dict[str, Any] = {}
    try:
        if method.endswith("_stream"):
            chunks = []
            try:
                async for chunk in getattr(provider, method)(*args, **kwargs):
                    chunks.append(stable(chunk.model_dump()))
            except LLMError as exc:
                outcome["error"] = error_view(exc)
            outcome["chunks"] = chunks
        else:
            try:
                outcome["response"] = stable((await getattr(provider, method)(*args, **kwargs)).model_dump())
            except LLMError as exc:
                outcome["error"] = error_view(exc)
    finally:
        await provider.cleanup()
    records = sim.requests
    outcome["requests"] = [request_view(r) for r in records]
    return outcome


@pytest.mark.parametrize("path", _cases())
async def test_both_transports_report_the_same(path: Path, sim: ProviderSimulator) -> None:
    case = ConformanceCase.from_file(path)
    sdk = await run_once(case, sim, "sdk")
    native = await run_once(case, sim, "native")
    assert native.keys() == sdk.keys()
    assert native.get("error") == sdk.get("error")
    assert native.get("response") == sdk.get("response")
    assert native.get("chunks") == sdk.get("chunks")
    assert native["requests"] == sdk["requests"]
    assert sdk["requests"], "nothing was sent"
    if case.status < 400 and "stream_error" not in case.expected:
        assert "error" not in native, native.get("error")
