"""Gemini's REST API over our native aiohttp client: the JSON our mapping built, decoded once, no SDK involved.

It implements the same :class:`~._transport.GeminiTransport` surface as the google-genai paths, and reproduces
what they send and report: ``{base}/{api_version}/{model}:{method}`` URLs (``streamGenerateContent?alt=sse``),
``x-goog-api-key``, ``X-Server-Timeout`` (the timeout in whole seconds, as google-genai sends it), only status 200
counted as success, error bodies mapped as google-genai's ``APIError`` would be, an ``{"error": ...}`` chunk in a
200 stream raised, and an undecodable stream chunk reported as a cut stream.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...errors import NetworkError, ResponseParsingError, excerpt
from ...transport import SSEParser, dumps, loads
from ...transport._sse import DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_STREAM_BYTES
from .._sse_stream import sse_stream
from ._errors import in_band_error, status_error

if TYPE_CHECKING:
    from ...transport._native import NativeClient

__all__ = ["NativeTransport", "server_timeout"]

PROVIDER = "gemini"


def server_timeout(seconds: float | None) -> str | None:
    """The ``X-Server-Timeout`` value for a timeout (``None``: no header).

    Whole seconds, rounded up from the milliseconds google-genai is given.
    """
    if seconds is None:
        return None
    milliseconds = int(seconds * 1000)
    return str(math.ceil(milliseconds / 1000.0)) if milliseconds else None


class NativeTransport:
    """``generateContent``, ``streamGenerateContent``, ``countTokens``, ``batchEmbedContents`` and ``GET models/x``."""

    def __init__(self, client: NativeClient, base_url: str, api_version: str, *, provider: str = PROVIDER,
                 auth: Callable[[], Awaitable[Mapping[str, str]]] | None = None,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
                 max_stream_bytes: int = DEFAULT_MAX_STREAM_BYTES) -> None:
        """``auth``, when given, supplies headers for each request (Vertex AI's bearer tokens, which expire).

        ``max_event_bytes``/``max_stream_bytes`` cap one streamed event and a whole stream.
        """
        self._sse_limits = (max_event_bytes, max_stream_bytes)
        self._client = client
        self._root = f"{base_url.rstrip('/')}/{api_version}/" if api_version else f"{base_url.rstrip('/')}/"
        self._urls: dict[str, Any] = {}
        self._provider = provider
        self._auth = auth

    def _url(self, target: str) -> Any:
        url = self._urls.get(target)
        if url is None:
            url = self._urls[target] = self._client.url(self._root + target)
        return url

    async def _authorised(self, http_options: Mapping[str, Any] | None) -> dict[str, Any]:
        """``http_options`` with the ``auth`` headers of this moment added."""
        assert self._auth is not None
        options = dict(http_options or {})
        options["headers"] = {**(options.get("headers") or {}), **(await self._auth())}
        return options

    @staticmethod
    def _per_call(http_options: Mapping[str, Any] | None) -> tuple[dict[str, str] | None, float | None]:
        """Per-call headers and timeout (seconds) from the provider's google-genai-style ``http_options``."""
        if not http_options:
            return None, None
        headers = dict(http_options.get("headers") or {})
        milliseconds = http_options.get("timeout")
        timeout = milliseconds / 1000.0 if milliseconds is not None else None
        header = server_timeout(timeout)
        if header is not None and not any(k.lower() == "x-server-timeout" for k in headers):
            headers["X-Server-Timeout"] = header
        return headers or None, timeout

    async def _exchange(self, method: str, target: str, body: Mapping[str, Any] | None,
                        http_options: Mapping[str, Any] | None, model: str | None
                        ) -> tuple[dict[str, Any], Mapping[str, str]]:
        if self._auth is not None:
            http_options = await self._authorised(http_options)
        headers, timeout = self._per_call(http_options)
        reply = await self._client.request(
            method, self._url(target), body=dumps(body) if body is not None else None, headers=headers,
            timeout=timeout, model=model)
        if reply.status != 200:  # google-genai counts nothing else as success
            raise status_error(reply.status, reply.content, reply.headers, reply.reason, model=model,
                               provider=self._provider)
        if not reply.content:
            return {}, reply.headers
        try:
            data = loads(reply.content)
        except ValueError as exc:
            raise ResponseParsingError(f"the response is not valid JSON: {exc}", provider=self._provider,
                                       model=model) from exc
        return data, reply.headers

    async def generate(self, model: str, body: dict[str, Any], http_options: dict[str, Any] | None, *,
                       label: str | None = None) -> tuple[dict[str, Any], Mapping[str, str]]:
        """``generateContent``: the JSON body and the response headers."""
        return await self._exchange("POST", f"{model}:generateContent", body, http_options, label)

    async def stream(self, model: str, body: dict[str, Any], http_options: dict[str, Any] | None, *,
                     label: str | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """``streamGenerateContent?alt=sse``: each chunk's JSON, decoded once from the event's bytes."""
        if self._auth is not None:
            http_options = await self._authorised(http_options)
        headers, timeout = self._per_call(http_options)
        response = await self._client.stream("POST", self._url(f"{model}:streamGenerateContent?alt=sse"),
                                             body=dumps(body), headers=headers, timeout=timeout, model=label)
        try:
            if response.status_code != 200:
                raise status_error(response.status_code, await response.aread(), response.headers,
                                   response.reason_phrase, model=label, provider=self._provider)
            content_type = response.headers.get("content-type") or "text/event-stream"
            if "text/event-stream" not in content_type and "json" not in content_type:  # e.g. an HTML page
                raise ResponseParsingError(f"expected an event stream, got {content_type}: "
                                           f"{excerpt(await response.aread())}", provider=self._provider, model=label)
            parser = SSEParser(max_event_bytes=self._sse_limits[0], max_stream_bytes=self._sse_limits[1],
                               provider=self._provider, model=label)
            events = _ChunkEvents(self, response.status_code, response.headers, label)
            async for chunk in sse_stream(response, events, parser, _as_is):
                yield chunk
        finally:
            await response.aclose()  # a caller that stops early must not leave the response open

    def chunk(self, data: bytes, status: int, headers: Mapping[str, str], model: str | None,
              whole: bool = False) -> dict[str, Any]:
        """One event's JSON; an ``{"error": ...}`` payload raised, an undecodable one a parsing or cut error."""
        try:
            chunk = loads(data)
        except ValueError as exc:
            if whole:  # a complete event that is not JSON
                # Worded as the SDK path reports it (google-genai's UnknownApiResponseError, mapped).
                raise ResponseParsingError("the response is not valid JSON: Failed to parse response as JSON. Raw "
                                           f"response: {data.decode('utf-8', 'replace')}", provider=self._provider,
                                           model=model) from exc
            # half an event: the stream was cut mid-event
            raise NetworkError(f"undecodable stream chunk: {exc}", provider=self._provider, model=model) from exc
        if isinstance(chunk, dict) and next(iter(chunk), None) == "error":
            raise in_band_error(chunk, status, headers, model=model, provider=self._provider)
        return chunk  # type: ignore[no-any-return]

    async def count_tokens(self, model: str, body: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """``countTokens``."""
        return (await self._exchange("POST", f"{model}:countTokens", body, None, label))[0]

    async def embed(self, model: str, body: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """``batchEmbedContents``."""
        return (await self._exchange("POST", f"{model}:batchEmbedContents", body, None, label))[0]

    async def get_model(self, model: str, *, label: str | None = None) -> dict[str, Any]:
        """``GET models/{model}``."""
        return (await self._exchange("GET", model, None, None, label))[0]

    async def call(self, target: str, body: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """``POST {target}`` for the methods the other operations do not cover (Vertex's ``embedContent``)."""
        return (await self._exchange("POST", target, body, None, label))[0]


class _ChunkEvents:
    """The SSE view of a Gemini stream: each event is one ``GenerateContentResponse`` chunk, handed on as JSON."""

    __slots__ = ("_headers", "_model", "_status", "_transport")

    def __init__(self, transport: NativeTransport, status: int, headers: Mapping[str, str], model: str | None) -> None:
        self._transport = transport
        self._status = status
        self._headers = headers
        self._model = model

    def event(self, name: str | None, data: bytes, last: bool) -> tuple[dict[str, Any]]:
        return (self._transport.chunk(data, self._status, self._headers, self._model, whole=not last),)

    def end(self) -> tuple[()]:
        return ()  # Gemini has no closing event: the provider checks for a finish reason


def _as_is(exc: Exception) -> Exception:
    return exc  # the native client raises our errors already; the provider applies the stream-failure rule
