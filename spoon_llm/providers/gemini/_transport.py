"""How Gemini requests travel on the SDK transport, through ``google-genai``'s async client: REST JSON in and out.

(The native transport, :mod:`._native`, implements the same :class:`GeminiTransport` surface without the SDK.)
Two paths over the same client, so the wire mapping always sees plain camelCase JSON:

* :class:`RawSdkTransport` (default) hands our JSON body to the client's request layer
  (``client.aio._api_client.async_request[_streamed]``) and decodes the body it returns. That layer is not
  public API, but it is where google-genai's own methods end up after building SDK models, and skipping the
  models cuts the per-request CPU to about a quarter of ``generate_content`` (measured: 515-600 us -> 120 us
  per call, 1.5 ms -> 0.25 ms per 10-chunk stream). It also sends exactly what our mapping built. It stays
  the SDK transport's default for that reason, although it reaches into a private attribute; the native
  transport (the provider's default) needs neither.
* :class:`PublicSdkTransport` uses only the public typed methods (``generate_content`` with
  ``should_return_http_response``, ``generate_content_stream``, ``count_tokens``, ``embed_content``,
  ``models.get``) and turns their results back into REST JSON. It is chosen automatically when the request
  layer is missing (a future SDK), or with ``options.gemini_sdk_api = "public"``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Protocol

from ...transport import loads

__all__ = ["GeminiTransport", "PublicSdkTransport", "RawSdkTransport", "select_transport"]

_BODY_FIELDS = {"systemInstruction": "system_instruction", "tools": "tools", "toolConfig": "tool_config",
                "safetySettings": "safety_settings", "cachedContent": "cached_content"}


class GeminiTransport(Protocol):
    """What the provider needs from a transport; every method takes and returns REST JSON."""

    async def generate(self, model: str, body: dict[str, Any], http_options: dict[str, Any] | None, *,
                       label: str | None = None) -> tuple[dict[str, Any], Mapping[str, str]]:
        """``generateContent``: the JSON body and the response headers."""

    def stream(self, model: str, body: dict[str, Any], http_options: dict[str, Any] | None, *,
               label: str | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """``streamGenerateContent?alt=sse``: each chunk's JSON."""

    async def count_tokens(self, model: str, body: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """``countTokens`` for a ``generateContent`` body."""

    async def embed(self, model: str, body: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """``batchEmbedContents``."""

    async def get_model(self, model: str, *, label: str | None = None) -> dict[str, Any]:
        """``GET models/{model}`` (free).

        ``label`` is the model as the caller named it, for the errors a transport raises itself (the SDK
        transports leave errors to the provider's error scope and ignore it).
        """


class RawSdkTransport:
    """Our JSON through google-genai's request layer (auth, base URL, API version, timeouts, pool)."""

    def __init__(self, client: Any) -> None:
        self._api = client.aio._api_client

    @staticmethod
    def available(client: Any) -> bool:
        """Whether this SDK version has the request layer this transport relies on."""
        api = getattr(getattr(client, "aio", None), "_api_client", None)
        return callable(getattr(api, "async_request", None)) and callable(getattr(api, "async_request_streamed",
                                                                                  None))

    async def generate(self, model: str, body: dict[str, Any], http_options: dict[str, Any] | None, *,
                       label: str | None = None) -> tuple[dict[str, Any], Mapping[str, str]]:
        """``generateContent``."""
        response = await self._api.async_request("post", f"{model}:generateContent", body, http_options)
        return (loads(response.body) if response.body else {}), response.headers or {}

    async def stream(self, model: str, body: dict[str, Any], http_options: dict[str, Any] | None, *,
                     label: str | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """``streamGenerateContent?alt=sse``."""
        chunks = await self._api.async_request_streamed("post", f"{model}:streamGenerateContent?alt=sse", body,
                                                        http_options)
        try:
            async for chunk in chunks:
                yield loads(chunk.body)
        finally:
            await chunks.aclose()  # a caller that stops early must not leave the response open

    async def count_tokens(self, model: str, body: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """``countTokens``."""
        response = await self._api.async_request("post", f"{model}:countTokens", body, None)
        return loads(response.body) if response.body else {}

    async def embed(self, model: str, body: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """``batchEmbedContents``."""
        response = await self._api.async_request("post", f"{model}:batchEmbedContents", body, None)
        return loads(response.body) if response.body else {}

    async def get_model(self, model: str, *, label: str | None = None) -> dict[str, Any]:
        """``GET models/{model}``."""
        response = await self._api.async_request("get", model, {}, None)
        return loads(response.body) if response.body else {}

    async def call(self, target: str, body: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """``POST {target}`` for the methods the other operations do not cover (Vertex's ``embedContent``)."""
        response = await self._api.async_request("post", target, body, None)
        return loads(response.body) if response.body else {}


def _dump(obj: Any) -> dict[str, Any]:
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)  # type: ignore[no-any-return]


class PublicSdkTransport:
    """The same operations through google-genai's public, typed methods only."""

    def __init__(self, client: Any) -> None:
        self._models = client.aio.models

    @staticmethod
    def _config(body: Mapping[str, Any], http_options: dict[str, Any] | None) -> dict[str, Any]:
        config: dict[str, Any] = dict(body.get("generationConfig") or {})
        extra: dict[str, Any] = {}
        for key, value in body.items():
            if key in _BODY_FIELDS:
                config[key] = value
            elif key not in ("contents", "generationConfig"):
                extra[key] = value  # fields the typed config does not know travel as extra_body
        options = dict(http_options or {})
        if extra:
            options["extra_body"] = extra
        if options:
            config["httpOptions"] = options
        return config

    async def generate(self, model: str, body: dict[str, Any], http_options: dict[str, Any] | None, *,
                       label: str | None = None) -> tuple[dict[str, Any], Mapping[str, str]]:
        """``generate_content`` with the raw HTTP body returned."""
        config = self._config(body, http_options)
        config["shouldReturnHttpResponse"] = True
        response = await self._models.generate_content(model=model, contents=body["contents"], config=config)
        raw = response.sdk_http_response
        return (json.loads(raw.body) if raw.body else {}), raw.headers or {}

    async def stream(self, model: str, body: dict[str, Any], http_options: dict[str, Any] | None, *,
                     label: str | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """``generate_content_stream``, each typed chunk dumped back to its REST JSON."""
        chunks = await self._models.generate_content_stream(model=model, contents=body["contents"],
                                                            config=self._config(body, http_options))
        try:
            async for chunk in chunks:
                data = _dump(chunk)
                data.pop("sdkHttpResponse", None)
                yield data
        finally:
            await chunks.aclose()

    async def count_tokens(self, model: str, body: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """``count_tokens`` (the Gemini API counts the contents only on this path)."""
        request = body.get("generateContentRequest", body)
        return _dump(await self._models.count_tokens(model=model, contents=request["contents"]))

    async def embed(self, model: str, body: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """``embed_content`` for the texts of a ``batchEmbedContents`` body."""
        requests = body["requests"]
        first = requests[0] if requests else {}
        config = {k: first[k] for k in ("taskType", "outputDimensionality", "title") if k in first}
        texts = [r["content"]["parts"][0]["text"] for r in requests]
        return _dump(await self._models.embed_content(model=model, contents=texts, config=config or None))

    async def get_model(self, model: str, *, label: str | None = None) -> dict[str, Any]:
        """``models.get``."""
        return _dump(await self._models.get(model=model))


def select_transport(client: Any, preference: str | None) -> GeminiTransport:
    """The raw request-layer transport when available (and not declined), else the public one."""
    if preference != "public" and RawSdkTransport.available(client):
        return RawSdkTransport(client)
    return PublicSdkTransport(client)
