"""How Gemini requests travel on the SDK transport, through ``google-genai``'s async client: REST JSON in and out.

Every Gemini transport -- these two and the native one (:mod:`._native`) -- is a :class:`GeminiTransport`: the
shared :class:`~spoon_llm.providers._transport.VendorTransport` request surface (``post``/``get`` of a path
relative to the API version, ``models/x:generateContent``, returning the 200 body's bytes; ``translate``) plus
``events``, the stream as each chunk's JSON. The stream is the one place the SDK paths do not fit
``open_stream``: google-genai's streamed request layer hands back each SSE event already framed (its ``data``
text), and the public path typed chunks, never the byte stream, so turning them back into SSE bytes only to
parse them again would add work and move where the event/stream size limits apply (the SDK's HTTP client
already enforces them on the real bytes, :mod:`spoon_llm.transport._strict`). ``events`` is that adapter; the
native transport implements it over ``open_stream`` and the shared SSE loop.

Two SDK paths over the same client, so the wire mapping always sees plain camelCase JSON:

* :class:`RawSdkTransport` (default) hands our JSON body to the client's request layer
  (``client.aio._api_client.async_request[_streamed]``) and returns the body it got. That layer is not
  public API, but it is where google-genai's own methods end up after building SDK models, and skipping the
  models cuts the per-request CPU to about a quarter of ``generate_content`` (measured: 515-600 us -> 120 us
  per call, 1.5 ms -> 0.25 ms per 10-chunk stream). It also sends exactly what our mapping built. It stays
  the SDK transport's default for that reason, although it reaches into a private attribute; the native
  transport (the provider's default) needs neither.
* :class:`PublicSdkTransport` uses only the public typed methods (``generate_content`` with
  ``should_return_http_response``, ``generate_content_stream``, ``count_tokens``, ``embed_content``,
  ``models.get``), chosen by the path's method, and turns their results back into REST JSON. It is chosen
  automatically when the request layer is missing (a future SDK), or with ``options.gemini_sdk_api = "public"``.

Both map what escapes through ``translate`` (the provider's google-genai error mapping), applied by the
provider's :class:`~spoon_llm.providers._transport.ErrorScope`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Protocol

from ...errors import LLMError, ValidationError
from ...transport import dumps, loads

__all__ = ["GeminiTransport", "PublicSdkTransport", "RawSdkTransport", "Translate", "select_transport"]

#: ``translate(exc, model)``: our error for what an SDK call raised (``None``: not an SDK failure).
Translate = Callable[[BaseException, "str | None"], "LLMError | None"]

_BODY_FIELDS = {"systemInstruction": "system_instruction", "tools": "tools", "toolConfig": "tool_config",
                "safetySettings": "safety_settings", "cachedContent": "cached_content"}


class GeminiTransport(Protocol):
    """The shared request surface (``post``/``get``/``translate``) plus ``events``, the stream as chunk JSON."""

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """POST the JSON ``body`` to ``path``; the 200 body (``b""`` for none) and the response headers."""

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """GET ``path``; the 200 body."""

    def events(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
               timeout: float | None) -> AsyncGenerator[dict[str, Any], None]:
        """POST a ``streamGenerateContent?alt=sse`` request; each chunk's JSON."""

    def translate(self, exc: BaseException, model: str | None) -> LLMError | None:
        """Our error for what a call or a stream read raised (``None``: not this transport's failure)."""


def _http_options(headers: Mapping[str, str] | None, timeout: float | None) -> dict[str, Any] | None:
    """google-genai's per-call ``http_options`` (the timeout in whole milliseconds)."""
    if timeout is None and not headers:
        return None
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = int(timeout * 1000)
    if headers:
        options["headers"] = headers
    return options


class RawSdkTransport:
    """Our JSON through google-genai's request layer (auth, base URL, API version, timeouts, pool)."""

    def __init__(self, client: Any, translate: Translate) -> None:
        self._api = client.aio._api_client
        self.translate = translate

    @staticmethod
    def available(client: Any) -> bool:
        """Whether this SDK version has the request layer this transport relies on."""
        api = getattr(getattr(client, "aio", None), "_api_client", None)
        return callable(getattr(api, "async_request", None)) and callable(getattr(api, "async_request_streamed",
                                                                                  None))

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """``POST {path}``."""
        response = await self._api.async_request("post", path, body, _http_options(headers, timeout))
        return (response.body.encode() if response.body else b""), response.headers or {}

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """``GET {path}``."""
        response = await self._api.async_request("get", path, {}, _http_options(None, timeout))
        return response.body.encode() if response.body else b""

    async def events(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                     timeout: float | None) -> AsyncGenerator[dict[str, Any], None]:
        """``streamGenerateContent?alt=sse``: each event's ``data`` decoded."""
        chunks = await self._api.async_request_streamed("post", path, body, _http_options(headers, timeout))
        try:
            async for chunk in chunks:
                yield loads(chunk.body)
        finally:
            await chunks.aclose()  # a caller that stops early must not leave the response open


def _dump(obj: Any) -> dict[str, Any]:
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)  # type: ignore[no-any-return]


class PublicSdkTransport:
    """The same operations through google-genai's public, typed methods only (chosen by the path's method)."""

    def __init__(self, client: Any, translate: Translate) -> None:
        self._models = client.aio.models
        self.translate = translate

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

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """``generate_content`` (the raw HTTP body returned), ``count_tokens`` or ``embed_content``."""
        target, _, method = path.rpartition(":")
        if method == "generateContent":
            config = self._config(body, _http_options(headers, timeout))
            config["shouldReturnHttpResponse"] = True
            response = await self._models.generate_content(model=target, contents=body["contents"], config=config)
            raw = response.sdk_http_response
            return (raw.body.encode() if raw.body else b""), raw.headers or {}
        if method == "countTokens":
            # The Gemini API counts the contents only on this path.
            request = body.get("generateContentRequest", body)
            return dumps(_dump(await self._models.count_tokens(model=target, contents=request["contents"]))), {}
        if method == "batchEmbedContents":
            return dumps(await self._embed(target, body)), {}
        raise ValidationError(f"google-genai's public API has no {method or path!r} call; drop "
                              "options.gemini_sdk_api = \"public\" or use transport = \"native\"",
                              provider="gemini", model=model)

    async def _embed(self, model: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``embed_content`` for the texts of a ``batchEmbedContents`` body."""
        requests = body["requests"]
        first = requests[0] if requests else {}
        config = {k: first[k] for k in ("taskType", "outputDimensionality", "title") if k in first}
        texts = [r["content"]["parts"][0]["text"] for r in requests]
        return _dump(await self._models.embed_content(model=model, contents=texts, config=config or None))

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """``models.get``."""
        return dumps(_dump(await self._models.get(model=path)))

    async def events(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                     timeout: float | None) -> AsyncGenerator[dict[str, Any], None]:
        """``generate_content_stream``, each typed chunk dumped back to its REST JSON."""
        target = path.rpartition(":")[0]
        chunks = await self._models.generate_content_stream(model=target, contents=body["contents"],
                                                            config=self._config(body, _http_options(headers,
                                                                                                    timeout)))
        try:
            async for chunk in chunks:
                data = _dump(chunk)
                data.pop("sdkHttpResponse", None)
                yield data
        finally:
            await chunks.aclose()


def select_transport(client: Any, preference: str | None, translate: Translate) -> GeminiTransport:
    """The raw request-layer transport when available (and not declined), else the public one."""
    if preference != "public" and RawSdkTransport.available(client):
        return RawSdkTransport(client, translate)
    return PublicSdkTransport(client, translate)
