"""The floor for a Python LLM gateway: the least a proxy can do per request, for bench_gateway.py to compare with.

A raw ASGI app on uvicorn (httptools, uvloop) that reads the body, decodes it with orjson, forwards it over one
pooled aiohttp session, reads the usage back (from the JSON answer, or from the last event of a stream) and
answers with the upstream's bytes. No auth, no routing, no accounting: whatever a real gateway costs beyond this
is the price of its features.

    python benchmarks/floor_proxy.py --upstream http://127.0.0.1:8000/v1 --port 4100
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import orjson
import uvicorn

_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class FloorProxy:
    """``POST /v1/chat/completions`` (JSON or SSE) forwarded to ``upstream``; ``GET /health``."""

    def __init__(self, upstream: str, api_key: str = "sk-floor-0123456789") -> None:
        self.url = upstream.rstrip("/") + "/chat/completions"
        self.headers = {"content-type": "application/json", "authorization": f"Bearer {api_key}"}
        self.session: aiohttp.ClientSession | None = None
        self.tokens = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.session is not None:
                        await self.session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": _JSON})
            await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        request = orjson.loads(body)
        assert self.session is not None
        async with self.session.post(self.url, data=body, headers=self.headers) as response:
            if not request.get("stream"):
                raw = await response.read()
                usage = orjson.loads(raw).get("usage") or {}
                self.tokens += usage.get("total_tokens", 0)
                await send({"type": "http.response.start", "status": response.status, "headers": _JSON})
                await send({"type": "http.response.body", "body": raw})
                return
            await send({"type": "http.response.start", "status": response.status, "headers": _SSE})
            previous = last = b""
            async for piece in response.content.iter_any():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                previous, last = last, piece
            # The usage chunk is the last event before [DONE].
            for line in reversed((previous + last).split(b"\n")):
                if line.startswith(b"data: {") and b'"usage"' in line:
                    usage = orjson.loads(line[6:]).get("usage") or {}
                    self.tokens += usage.get("total_tokens", 0)
                    break
            await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="OpenAI-style base URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4100)
    args = parser.parse_args()
    uvicorn.run(FloorProxy(args.upstream), host=args.host, port=args.port, loop="uvloop", http="httptools",
                lifespan="on", access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
