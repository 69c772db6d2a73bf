"""CPU per request of the native transport against raw aiohttp, the official SDKs and our SDK transport.

One harness run per mode (non-stream, stream) and vendor, same simulator process, every client in its own forked
process (see ``harness.py``). Clients, for OpenAI (``--vendor openai``, the default):

* ``raw_aiohttp``     -- the floor and the baseline: one ``aiohttp.ClientSession``, ``json=`` body,
                          ``json.loads(await response.read())``; streams: ``async for line in response.content``,
                          ``json.loads`` of every ``data:`` line
* ``openai_sdk``      -- ``AsyncOpenAI().chat.completions.create`` on its default httpx2 client
* ``openai_sdk_aio``  -- the same on the SDK's aiohttp client (``DefaultAioHttpClient``)
* ``spoon_sdk``       -- ``OpenAIProvider.chat`` / ``chat_stream`` with ``transport = "sdk"``
* ``spoon_native``    -- the same with ``transport = "native"`` (the default)
* ``manager_native``  -- ``LLMManager.chat`` / ``chat_stream`` over the native provider (routing, attempt loop,
                          circuit breaker, stats)

``--vendor bedrock`` runs Converse / ConverseStream: raw aiohttp with a fixed SigV4-shaped header (no signing: a
floor) and an event-stream frame splitter, against our provider (which signs each request) and the manager.
``--vendor anthropic`` / ``gemini`` / ``openai_responses`` (the Responses API, ``POST /v1/responses``) run the
same line-up with that vendor's raw request, official SDK and our provider on both transports. Every client reads
the whole answer; ours build ``LLMResponse`` / chunk objects, the raw client only ``json.loads`` (our Chat
Completions streams also ask for ``stream_options.include_usage``, one more event).

Targets (issue "native fast transport"): ``spoon_native`` <= 2.0x ``raw_aiohttp`` CPU per request, streaming
included, at c=1 and c=256; ``manager_native`` <= 2.5x.

Usage::

    .venv/bin/python benchmarks/bench_native.py                              # openai, chat + stream, c=1,256
    .venv/bin/python benchmarks/bench_native.py --vendor all -n 2000 --mode chat
    .venv/bin/python benchmarks/bench_native.py --clients raw_aiohttp,spoon_native -c 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CLIENTS, RequestFn, Result, Target, run_benchmark, spoon_requests  # noqa: E402

KEYS = {"openai": "sk-bench-native-00000000", "anthropic": "sk-ant-bench-native-0000",
        "gemini": "AIzaSyBENCH0000000000000000", "openai_responses": "sk-bench-native-00000000"}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-6", "gemini": "gemini-2.5-flash",
          "openai_responses": "gpt-4o-mini", "bedrock": "anthropic.claude-3-5-haiku-20241022-v1:0"}
VENDORS = ("openai", "anthropic", "gemini", "openai_responses", "bedrock")
#: Bedrock: our provider signs every request (SigV4) with these; the raw baseline sends one fixed header of the
#: same shape (it does not sign, so it is a floor below any real client).
AWS = {"aws_access_key_id": "AKIDBENCHNATIVE00000", "aws_secret_access_key": "bench-native-secret-0000000000000000",
       "aws_region": "us-east-1"}
_RAW_SIGV4 = ("AWS4-HMAC-SHA256 Credential=AKIDBENCHNATIVE00000/20260101/us-east-1/bedrock/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date, Signature=" + "0" * 64)
POOL = 1000  # connections per client: every client may open as many as the highest concurrency needs
Factory = Callable[[Target], contextlib.AbstractAsyncContextManager[RequestFn]]


def _raw_request(vendor: str, target: Target) -> tuple[str, dict[str, str], dict[str, Any], str, dict[str, Any]]:
    """URL, headers, body of a plain request for ``vendor``, and the streamed variant's URL and body."""
    messages = list(target.messages)
    if vendor == "anthropic":
        url = target.anthropic_base_url + "/v1/messages"
        headers = {"authorization": f"Bearer {KEYS[vendor]}", "anthropic-version": "2023-06-01"}
        body = {"model": MODELS[vendor], "max_tokens": target.max_tokens, "messages": messages}
        return url, headers, body, url, {**body, "stream": True}
    if vendor == "gemini":
        base = f"{target.gemini_base_url}/v1beta/models/{MODELS[vendor]}"
        headers = {"x-goog-api-key": KEYS[vendor]}
        body = {"contents": [{"role": "user", "parts": [{"text": m["content"]}]} for m in messages]}
        return f"{base}:generateContent", headers, body, f"{base}:streamGenerateContent?alt=sse", body
    if vendor == "bedrock":
        base = f"{target.base_url}/model/{MODELS[vendor]}"
        headers = {"authorization": _RAW_SIGV4, "x-amz-date": "20260101T000000Z"}
        body = {"messages": [{"role": m["role"], "content": [{"text": m["content"]}]} for m in messages],
                "inferenceConfig": {"maxTokens": target.max_tokens}}
        return f"{base}/converse", headers, body, f"{base}/converse-stream", body
    if vendor == "openai_responses":
        url = target.openai_base_url + "/responses"
        body = {"model": MODELS[vendor], "input": messages, "max_output_tokens": target.max_tokens}
        return url, {"authorization": f"Bearer {KEYS[vendor]}"}, body, url, {**body, "stream": True}
    url = target.openai_base_url + "/chat/completions"
    headers = {"authorization": f"Bearer {KEYS[vendor]}"}
    body = {"model": MODELS[vendor], "messages": messages}
    return url, headers, body, url, {**body, "stream": True}


def raw_aiohttp(vendor: str) -> Factory:
    """The baseline: aiohttp + ``json.loads``, nothing else."""

    @contextlib.asynccontextmanager
    async def factory(target: Target) -> AsyncIterator[RequestFn]:
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))
        url, headers, body, stream_url, stream_body = _raw_request(vendor, target)

        async def call() -> object:
            async with session.post(url, json=body, headers=headers) as response:
                response.raise_for_status()
                return json.loads(await response.read())

        async def call_eventstream() -> object:
            # application/vnd.amazon.eventstream: 12-byte prelude (total length, headers length, CRC), headers,
            # a JSON payload, a 4-byte CRC. Frames are split and their payloads decoded; CRCs are not checked.
            parts = []
            async with session.post(stream_url, json=stream_body, headers=headers) as response:
                response.raise_for_status()
                buffer = b""
                async for piece in response.content.iter_any():
                    buffer += piece
                    while len(buffer) >= 12:
                        total = int.from_bytes(buffer[:4], "big")
                        if len(buffer) < total:
                            break
                        start = 12 + int.from_bytes(buffer[4:8], "big")
                        parts.append(json.loads(buffer[start:total - 4]))
                        buffer = buffer[total:]
            return parts

        async def call_stream() -> object:
            parts = []
            async with session.post(stream_url, json=stream_body, headers=headers) as response:
                response.raise_for_status()
                async for line in response.content:
                    if line.startswith(b"data: ") and not line.startswith(b"data: [DONE]"):
                        parts.append(json.loads(line[6:]))
            return parts

        streamed = call_eventstream if vendor == "bedrock" else call_stream
        try:
            yield streamed if target.stream else call
        finally:
            await session.close()

    return factory


@contextlib.asynccontextmanager
async def openai_sdk_aio(target: Target) -> AsyncIterator[RequestFn]:
    """``AsyncOpenAI`` on the SDK's aiohttp client."""
    import openai

    client = openai.AsyncOpenAI(base_url=target.openai_base_url, api_key=KEYS["openai"], max_retries=0,
                                http_client=openai.DefaultAioHttpClient())
    messages: Any = list(target.messages)

    async def call() -> object:
        return await client.chat.completions.create(model=MODELS["openai"], messages=messages)

    async def call_stream() -> object:
        stream = await client.chat.completions.create(model=MODELS["openai"], messages=messages, stream=True)
        return [chunk async for chunk in stream]

    try:
        yield call_stream if target.stream else call
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def openai_responses_sdk(target: Target) -> AsyncIterator[RequestFn]:
    """``AsyncOpenAI().responses.create`` on its default httpx2 client."""
    import openai

    client = openai.AsyncOpenAI(base_url=target.openai_base_url, api_key=KEYS["openai_responses"], max_retries=0)
    messages: Any = list(target.messages)
    model = MODELS["openai_responses"]

    async def call() -> object:
        return await client.responses.create(model=model, input=messages, max_output_tokens=target.max_tokens)

    async def call_stream() -> object:
        stream = await client.responses.create(model=model, input=messages, max_output_tokens=target.max_tokens,
                                               stream=True)
        return [event async for event in stream]

    try:
        yield call_stream if target.stream else call
    finally:
        await client.close()


def _provider_config(vendor: str, target: Target, transport: str) -> dict[str, Any]:
    if vendor == "bedrock":
        return {**AWS, "base_url": target.base_url, "model": MODELS[vendor], "transport": transport,
                "max_connections": POOL, "max_keepalive_connections": POOL, "max_tokens": target.max_tokens}
    base = {"openai": target.openai_base_url, "anthropic": target.anthropic_base_url,
            "gemini": target.gemini_base_url, "openai_responses": target.openai_base_url}[vendor]
    return {"api_key": KEYS[vendor], "base_url": base, "model": MODELS[vendor], "transport": transport,
            "max_connections": POOL, "max_keepalive_connections": POOL, "max_tokens": target.max_tokens}


def spoon_provider(vendor: str, transport: str) -> Factory:
    """Our provider for ``vendor`` on ``transport``: ``chat`` / every chunk of ``chat_stream``."""

    @contextlib.asynccontextmanager
    async def factory(target: Target) -> AsyncIterator[RequestFn]:
        from spoon_llm.registry import LLMProviderRegistry

        registry = LLMProviderRegistry(load_plugins=False)
        provider = await registry.get_initialized_provider(vendor, _provider_config(vendor, target, transport))
        try:
            yield spoon_requests(target, provider)
        finally:
            await provider.cleanup()

    return factory


def spoon_manager(vendor: str, transport: str) -> Factory:
    """``LLMManager.chat`` / ``chat_stream`` over our provider."""

    @contextlib.asynccontextmanager
    async def factory(target: Target) -> AsyncIterator[RequestFn]:
        from spoon_llm import ConfigurationManager
        from spoon_llm.manager import LLMManager

        config = ConfigurationManager({"providers": {vendor: _provider_config(vendor, target, transport)}}, env={})
        manager = LLMManager(config)
        try:
            yield spoon_requests(target, manager)
        finally:
            await manager.cleanup()

    return factory


def clients_for(vendor: str) -> dict[str, Factory]:
    """The line-up for one vendor, baseline first."""
    line_up = {"raw_aiohttp": raw_aiohttp(vendor)}
    if vendor == "bedrock":  # no SDK transport: the native client is the only one
        line_up.update({"spoon_native": spoon_provider(vendor, "native"),
                        "manager_native": spoon_manager(vendor, "native")})
        return line_up
    official = {"openai": CLIENTS["openai_sdk"], "anthropic": CLIENTS["anthropic_sdk"],
                "gemini": CLIENTS["gemini_sdk"], "openai_responses": openai_responses_sdk}[vendor]
    line_up[f"{vendor}_sdk"] = official
    if vendor == "openai":
        line_up["openai_sdk_aio"] = openai_sdk_aio
    line_up.update({"spoon_sdk": spoon_provider(vendor, "sdk"), "spoon_native": spoon_provider(vendor, "native"),
                    "manager_native": spoon_manager(vendor, "native")})
    return line_up


def _ratio(results: list[Result], client: str, c: int) -> float | None:
    by = {(r.client, r.concurrency): r for r in results}
    ours, base = by.get((client, c)), by.get(("raw_aiohttp", c))
    if ours is None or base is None or not base.cpu_us_per_req:
        return None
    return ours.cpu_us_per_req / base.cpu_us_per_req


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vendor", choices=[*VENDORS, "all"], default="openai")
    parser.add_argument("-n", type=int, default=2000, help="measured requests per client and concurrency")
    parser.add_argument("-c", "--concurrency", default="1,256", help="comma-separated concurrency levels")
    parser.add_argument("--mode", choices=["both", "chat", "stream"], default="both")
    parser.add_argument("--clients", default=None, help="subset of the line-up (comma-separated names)")
    parser.add_argument("--json", type=Path, default=None, help="also write every result to this JSON file")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    vendors = list(VENDORS) if args.vendor == "all" else [args.vendor]
    modes = {"both": [False, True], "chat": [False], "stream": [True]}[args.mode]
    summary: list[str] = []
    everything: list[dict[str, Any]] = []
    for vendor in vendors:
        line_up = clients_for(vendor)
        if args.clients:
            wanted = {"raw_aiohttp", *args.clients.split(",")}
            line_up = {name: f for name, f in line_up.items() if name in wanted}
        for stream in modes:
            label = "stream" if stream else "chat"
            print(f"\n== {vendor} {label}: n={args.n} per client and concurrency ==", flush=True)
            results = run_benchmark(line_up, n=args.n, concurrency=levels, stream=stream, baseline="raw_aiohttp",
                                    model=MODELS[vendor])
            everything += [{"vendor": vendor, **r.__dict__} for r in results]
            for c in levels:
                for client, limit in (("spoon_native", 2.0), ("manager_native", 2.5), ("spoon_sdk", None)):
                    ratio = _ratio(results, client, c)
                    if ratio is not None:
                        verdict = "" if limit is None else ("  ok" if ratio <= limit else f"  OVER {limit}x")
                        summary.append(f"{vendor:<9} {label:<6} c={c:<4} {client:<15} / raw_aiohttp CPU per "
                                       f"request x{ratio:.2f}{verdict}")
    print("\n== CPU per request against raw aiohttp (targets: spoon_native <= 2.0x, manager_native <= 2.5x) ==")
    print("\n".join(summary))
    if args.json is not None:
        args.json.write_text(json.dumps(everything, indent=2))


if __name__ == "__main__":
    main()
