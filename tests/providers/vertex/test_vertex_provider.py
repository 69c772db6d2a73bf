"""VertexProvider end to end over real sockets to the simulator, on both transports.

Token auth (fixed token, token providers sync and async, expiry and refresh, a refused token dropped, google-auth
credentials refreshed in a worker thread), express mode with an API key, the simulator refusing requests
without credentials, embeddings (``embedContent`` and ``predict``), token counting, health checks, configuration
errors (one of them in a subprocess with no credentials anywhere), and a Vertex -> Gemini fallback through
:class:`LLMManager`.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from spoon_llm import ConfigurationManager
from spoon_llm.errors import AuthenticationError, ConfigurationError, ModelNotFoundError
from spoon_llm.manager import LLMManager
from spoon_llm.providers._stream import StreamAccumulator
from spoon_llm.providers.gemini._decode import StreamDecoder, decode_response
from spoon_llm.providers.vertex import AccessToken, VertexProvider
from spoon_llm.providers.vertex._auth import TokenSource
from spoon_llm.streaming import collect_stream
from spoon_llm.testing import Fault, ProviderSimulator, Reply
from spoon_llm.testing import ToolCall as ScriptedCall
from spoon_llm.types import Message

TOKEN = "ya29.test-token-0001"  # what conftest's make_provider configures
CHAT_PATH = "/v1beta1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash"


@pytest.fixture
async def built(sim: ProviderSimulator, transport: str) -> Any:
    """``await built(token_provider=..., credentials=..., **config)``: a provider closed after the test."""
    made: list[VertexProvider] = []

    async def build(*, token_provider: Any = None, credentials: Any = None, **config: Any) -> VertexProvider:
        provider = VertexProvider(token_provider=token_provider, credentials=credentials)
        settings = {"base_url": sim.vertex_base_url, "model": "gemini-2.5-flash", "project": "test-project",
                    "vertex_location": "us-central1", "transport": transport, **config}
        await provider.initialize(settings)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.cleanup()


def _bearers(sim: ProviderSimulator) -> list[str | None]:
    return [r.header("authorization") for r in sim.requests_for("vertex")]


async def test_fixed_token_on_the_project_path(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    response = await provider.chat("hello")
    assert response.content == "Simulated reply to: hello"
    assert response.provider == "vertex" and response.finish_reason == "stop"
    sent = sim.last_request("vertex")
    assert sent.path == CHAT_PATH + ":generateContent"
    assert sent.header("authorization") == "Bearer ***0001"
    assert sent.header("x-goog-api-key") is None
    assert TOKEN not in repr(provider)


WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_tool_calling_conversation_over_two_turns(sim: ProviderSimulator, make_provider: Any,
                                                          stream: bool) -> None:
    provider = await make_provider()
    sim.script("vertex", Reply(tool_calls=[ScriptedCall("get_weather", {"city": "Paris"}, id="fc_paris")]), times=1)
    sim.script("vertex", Reply(text="Sunny in Paris."), times=1)
    history: list[Message] = [Message.system("Be brief."), Message.user("Weather in Paris?")]

    async def ask() -> Any:
        if stream:
            return await collect_stream(provider.chat_stream(history, tools=[WEATHER], tool_choice="auto"))
        return await provider.chat_with_tools(history, [WEATHER], tool_choice="auto")

    first = await ask()
    assert first.provider == "vertex"
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [("fc_paris", "get_weather", {"city": "Paris"})]
    assert (first.finish_reason, first.native_finish_reason) == ("tool_calls", "STOP")
    history += [first.to_message(), Message.tool("fc_paris", {"sky": "sunny"})]
    second = await ask()
    assert second.content == "Sunny in Paris." and second.finish_reason == "stop"
    bodies = [r.body for r in sim.requests_for("vertex", "chat")]
    assert bodies[0]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in bodies[1]["contents"]] == ["user", "model", "user"]
    assert bodies[1]["contents"][2]["parts"] == [
        {"functionResponse": {"id": "fc_paris", "name": "get_weather", "response": {"sky": "sunny"}}}]


async def test_streams_carry_the_token_too(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    sim.script("vertex", Reply(text="one two three four five six seven eight nine"))
    answer = await collect_stream(provider.chat_stream("hi"))
    assert answer.content == "one two three four five six seven eight nine"
    assert answer.provider == "vertex"
    sent = sim.last_request("vertex")
    assert sent.path == CHAT_PATH + ":streamGenerateContent" and sent.query == {"alt": "sse"}
    assert sent.header("authorization") == "Bearer ***0001"


async def test_token_provider_reused_until_near_expiry(sim: ProviderSimulator, built: Any) -> None:
    issued: list[str] = []
    lifetime = 3600.0

    def provide() -> AccessToken:
        issued.append(f"ya29.provided-token-{len(issued) + 1:04d}")
        return AccessToken(issued[-1], expires_at=time.time() + lifetime)

    provider = await built(token_provider=provide)
    for _ in range(3):
        await provider.chat("hi")
    assert issued == ["ya29.provided-token-0001"]  # one token served three requests
    # Tokens that expire within the refresh margin (5 minutes) are fetched again for every request.
    lifetime = 60.0
    provider._tokens.invalidate()
    await provider.chat("hi")
    await collect_stream(provider.chat_stream("hi"))
    assert len(issued) == 3
    assert _bearers(sim) == ["Bearer ***0001"] * 3 + ["Bearer ***0002", "Bearer ***0003"]


async def test_async_token_provider_returning_strings_is_asked_every_time(sim: ProviderSimulator,
                                                                         built: Any) -> None:
    calls = 0

    async def provide() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return f"ya29.async-token-{calls:04d}"

    provider = await built(token_provider=provide)
    await provider.chat("hi")
    await provider.chat("hi")
    assert calls == 2  # a bare string has no known expiry
    assert _bearers(sim) == ["Bearer ***0001", "Bearer ***0002"]


async def test_a_refused_token_is_dropped_and_the_next_request_fetches_another(sim: ProviderSimulator,
                                                                              built: Any) -> None:
    issued: list[str] = []

    def provide() -> AccessToken:
        issued.append(f"ya29.refreshing-token-{len(issued) + 1:04d}")
        return AccessToken(issued[-1], expires_at=time.time() + 3600)

    provider = await built(token_provider=provide)
    sim.fault("vertex", Fault.unauthorized())
    with pytest.raises(AuthenticationError) as info:
        await provider.chat("hi")
    assert info.value.status_code == 401 and info.value.provider == "vertex"
    assert info.value.error_type == "UNAUTHENTICATED"
    assert (await provider.chat("hi")).content == "Simulated reply to: hi"
    sim.fault("vertex", Fault.unauthorized())
    with pytest.raises(AuthenticationError):
        await collect_stream(provider.chat_stream("hi"))
    await provider.chat("hi")
    assert _bearers(sim) == ["Bearer ***0001", "Bearer ***0002", "Bearer ***0002", "Bearer ***0003"]


async def test_token_provider_failures_are_authentication_errors(built: Any) -> None:
    def broken() -> str:
        raise RuntimeError("metadata server unreachable")

    provider = await built(token_provider=broken)
    with pytest.raises(AuthenticationError, match="token provider: RuntimeError: metadata server unreachable"):
        await provider.chat("hi")
    empty = await built(token_provider=lambda: "")
    with pytest.raises(AuthenticationError, match="empty token"):
        await empty.chat("hi")


async def test_token_provider_named_in_the_options(sim: ProviderSimulator, built: Any) -> None:
    provider = await built(options={"token_provider": "os:getcwd"})  # any importable callable returning a str
    await provider.chat("hi")
    assert _bearers(sim) == [f"Bearer ***{os.getcwd()[-4:]}" if len(os.getcwd()) >= 12 else "Bearer ***"]
    with pytest.raises(ConfigurationError, match="package.module:function"):
        await built(options={"token_provider": "not-a-spec"})
    with pytest.raises(ConfigurationError, match="cannot be imported"):
        await built(options={"token_provider": "spoon_llm.nowhere:token"})


class _RefreshingCredentials:
    """Stands in for google-auth credentials (a service account's): ``refresh`` mints a token and an expiry."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.expiry: datetime.datetime | None = None
        self.refreshes = 0
        self.threads: set[int] = set()
        self.quota_project_id = "billing-project"

    @property
    def valid(self) -> bool:
        return self.token is not None and self.expiry is not None and \
            self.expiry > datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    def refresh(self, request: Any) -> None:
        import threading

        self.threads.add(threading.get_ident())
        self.refreshes += 1
        self.token = f"ya29.credentials-token-{self.refreshes:04d}"
        self.expiry = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(hours=1)


async def test_google_auth_credentials_refresh_off_the_event_loop(sim: ProviderSimulator, built: Any) -> None:
    import threading

    credentials = _RefreshingCredentials()
    provider = await built(credentials=credentials)
    await provider.chat("hi")
    await provider.chat("hi")
    assert credentials.refreshes == 1 and threading.get_ident() not in credentials.threads
    provider._tokens.invalidate()  # as after a 401: the credentials are asked again
    credentials.expiry = datetime.datetime(2000, 1, 1)
    await provider.chat("hi")
    assert credentials.refreshes == 2
    assert _bearers(sim) == ["Bearer ***0001", "Bearer ***0001", "Bearer ***0002"]
    assert {r.header("x-goog-user-project") for r in sim.requests_for("vertex")} == {"billing-project"}


async def test_token_source_refreshes_by_the_clock() -> None:
    now = 1_000.0
    fetched: list[int] = []

    async def fetch() -> AccessToken:
        fetched.append(1)
        return AccessToken(f"token-{len(fetched)}", expires_at=now + 600)

    source = TokenSource(fetch, clock=lambda: now, margin=300)
    assert await source.token() == "token-1"
    now += 299  # 301 s left: still good
    assert await source.token() == "token-1"
    now += 2  # 299 s left: inside the margin
    assert await source.token() == "token-2"
    # Concurrent requests share one refresh.
    now += 1_000
    tokens = await asyncio.gather(*(source.token() for _ in range(5)))
    assert set(tokens) == {"token-3"} and source.fetches == 3


async def test_express_mode_uses_the_key_and_project_less_paths(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider(api_key="vertex-express-key-0000042", project=None, vertex_location=None,
                                   vertex_access_token=None)
    assert provider.express and provider.project is None
    assert (await provider.chat("hi")).content == "Simulated reply to: hi"
    await collect_stream(provider.chat_stream("hi"))
    chat, stream = sim.requests_for("vertex", "chat")
    assert chat.path == "/v1beta1/publishers/google/models/gemini-2.5-flash:generateContent"
    assert stream.path == "/v1beta1/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
    for sent in (chat, stream):
        assert sent.header("x-goog-api-key") == "***0042" and sent.header("authorization") is None
    with pytest.raises(ConfigurationError, match="express mode"):
        await make_provider(api_key="vertex-express-key-0000042", vertex_access_token=None)


async def test_requests_without_credentials_are_refused(sim: ProviderSimulator) -> None:
    async with httpx2.AsyncClient(base_url=sim.base_url) as raw:
        refused = await raw.post(CHAT_PATH + ":generateContent", json={"contents": [{"parts": [{"text": "x"}]}]})
        allowed = await raw.post(CHAT_PATH + ":generateContent", json={"contents": [{"parts": [{"text": "x"}]}]},
                                 headers={"Authorization": "Bearer ya29.raw-token-0000"})
    assert refused.status_code == 401 and refused.json()["error"]["status"] == "UNAUTHENTICATED"
    assert allowed.status_code == 200


async def test_embeddings_count_tokens_and_health(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    predicted = await provider.embed(["alpha", "beta"], task_type="retrieval_query")
    assert [len(v) for v in predicted.embeddings] == [3072, 3072]
    assert predicted.provider == "vertex" and predicted.usage is not None and predicted.usage.input_tokens > 0
    multimodal = await provider.embed(["alpha", "beta", "gamma"], model="gemini-embedding-2", dimensions=8)
    assert [len(v) for v in multimodal.embeddings] == [8, 8, 8]
    small = await provider.embed("alpha", model="text-embedding-005")
    assert len(small.embeddings[0]) == 768
    sent = sim.requests_for("vertex", "embeddings")
    # gemini-embedding-001 takes one text per predict call; embedContent one per request; text-embedding many.
    assert [r.path.rsplit(":", 1)[1] for r in sent] == ["predict"] * 2 + ["embedContent"] * 3 + ["predict"]
    assert sent[0].body == {"instances": [{"content": "alpha", "task_type": "RETRIEVAL_QUERY"}]}
    assert sent[2].body["embedContentConfig"] == {"outputDimensionality": 8}
    assert sent[0].header("authorization") == "Bearer ***0001"

    tokens = await provider.count_tokens([{"role": "system", "content": "Be brief."}, {"role": "user",
                                                                                       "content": "hello"}])
    assert tokens > 0
    counted = sim.last_request("vertex")
    assert counted.path == CHAT_PATH + ":countTokens"
    assert set(counted.body) == {"contents", "systemInstruction"}

    assert await provider.health_check()
    probe = sim.last_request("vertex")
    assert probe.method == "GET" and probe.path == "/v1beta1/publishers/google/models/gemini-2.5-flash"
    assert sim.requests_for("vertex", "chat") == []  # none of this spent tokens
    sim.fault("vertex", Fault.error(404), endpoint="model")
    assert not await provider.health_check()


async def test_errors_name_vertex(sim: ProviderSimulator, make_provider: Any) -> None:
    provider = await make_provider()
    sim.fault("vertex", Fault.error(404))
    with pytest.raises(ModelNotFoundError) as info:
        await provider.chat("hi")
    assert info.value.provider == "vertex" and info.value.error_type == "NOT_FOUND"
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.__cause__)


async def test_configuration_errors(make_provider: Any) -> None:
    with pytest.raises(ConfigurationError, match="one way to authenticate"):
        await make_provider(api_key="vertex-express-key-0000042")
    with pytest.raises(ConfigurationError, match="no Google Cloud project"):
        await make_provider(project=None)
    with pytest.raises(ConfigurationError, match="unknown option"):
        await make_provider(options={"locaton": "eu"})
    with pytest.raises(ConfigurationError, match="gemini_sdk_api"):
        await make_provider(options={"gemini_sdk_api": "public"})


def test_without_any_credentials_the_error_says_what_to_do(tmp_path: Path) -> None:
    """In a fresh interpreter with no key, token, provider or Application Default Credentials anywhere."""
    script = textwrap.dedent("""
        import asyncio
        from spoon_llm.errors import ConfigurationError
        from spoon_llm.providers.vertex import VertexProvider

        async def main():
            try:
                await VertexProvider().initialize({"project": "p", "base_url": "http://127.0.0.1:9"})
            except ConfigurationError as exc:
                print("ConfigurationError:", exc)

        asyncio.run(main())
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GCLOUD", "CLOUDSDK"))}
    env.update(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), NO_GCE_CHECK="true",
               GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ConfigurationError:" in done.stdout
    assert "gcloud auth application-default login" in done.stdout and "vertex_access_token" in done.stdout


def test_numeric_enums_are_reported_by_name() -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "cut"}], "role": "model"}, "finishReason": 2}],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}}
    response = decode_response(body, provider="vertex")
    assert (response.finish_reason, response.native_finish_reason, response.provider) == ("length", "MAX_TOKENS",
                                                                                          "vertex")
    blocked = decode_response({"promptFeedback": {"blockReason": 1}})
    assert blocked.metadata["block_reason"] == "SAFETY" and blocked.finish_reason == "content_filter"
    armor = decode_response({"candidates": [{"content": {"parts": []}, "finishReason": 10}]})
    assert (armor.native_finish_reason, armor.finish_reason) == ("MODEL_ARMOR", "content_filter")
    decoder = StreamDecoder(StreamAccumulator("vertex", "m"))
    decoder.feed({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": 15}]})
    decoder.finish()
    assert decoder.acc.native_finish_reason == "UNEXPECTED_TOOL_CALL" and decoder.acc.finish_reason == "error"


async def test_fallback_from_vertex_to_gemini_through_the_manager(sim: ProviderSimulator, transport: str) -> None:
    config = ConfigurationManager({
        "providers": {
            "vertex": {"project": "test-project", "vertex_location": "us-central1", "vertex_access_token": TOKEN,
                       "base_url": sim.base_url, "model": "gemini-2.5-flash", "transport": transport},
            "gemini": {"api_key": "AIzaSyTEST00000000000000000", "base_url": sim.gemini_base_url,
                       "model": "gemini-2.5-flash", "transport": transport},
        },
        "fallback_chain": ["vertex", "gemini"],
        "retry": {"max_retries": 0},
    }, env={})
    manager = LLMManager(config)
    try:
        sim.fault("vertex", Fault.error(503), times=None)
        response = await manager.chat("hello")
        assert response.provider == "gemini"
        assert response.content == "Simulated reply to: hello"
        assert response.fallback_path == ["vertex", "gemini"]
        assert len(sim.requests_for("vertex")) == 1 and len(sim.requests_for("gemini")) == 1
    finally:
        await manager.cleanup()



def test_answers_are_priced_as_gemini() -> None:
    from spoon_llm.pricing import PriceBook
    from spoon_llm.types import TokenUsage

    book = PriceBook()
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    ours = book.cost(usage, "gemini-2.5-flash", provider_type="vertex")
    assert not ours.unpriced and ours.total_cost == book.cost(usage, "gemini-2.5-flash",
                                                              provider_type="gemini").total_cost > 0


@pytest.mark.parametrize(("location", "expected"), [
    ("global", "https://aiplatform.googleapis.com/"),
    ("us-central1", "https://us-central1-aiplatform.googleapis.com/"),
    ("eu", "https://aiplatform.eu.rep.googleapis.com/"),
])
async def test_the_endpoint_follows_the_location(built: Any, location: str, expected: str) -> None:
    provider = await built(base_url=None, vertex_location=location, vertex_access_token=TOKEN)
    assert provider.base_url == expected and provider.location == location
    assert provider._model_path("gemini-2.5-pro") == (f"projects/test-project/locations/{location}/publishers/"
                                                      "google/models/gemini-2.5-pro")
    express = await built(base_url=None, project=None, vertex_location=None, api_key="vertex-express-key-0000042")
    assert express.base_url == "https://aiplatform.googleapis.com/"
    assert express._model_path("gemini-2.5-pro") == "publishers/google/models/gemini-2.5-pro"


async def test_resource_exhausted_is_retried_by_the_manager(sim: ProviderSimulator, transport: str) -> None:
    config = ConfigurationManager({
        "providers": {"vertex": {"project": "test-project", "vertex_location": "us-central1",
                                 "vertex_access_token": TOKEN, "base_url": sim.vertex_base_url,
                                 "model": "gemini-2.5-flash", "transport": transport}},
        "retry": {"max_retries": 1, "initial_backoff": 0.01, "max_backoff": 0.05},
    }, env={})
    manager = LLMManager(config)
    try:
        sim.fault("vertex", Fault.error(429, retry_after=0.01))
        response = await manager.chat("hello")
        assert response.provider == "vertex" and response.content == "Simulated reply to: hello"
        assert len(sim.requests_for("vertex", "chat")) == 2  # the 429, then the retry
    finally:
        await manager.cleanup()
