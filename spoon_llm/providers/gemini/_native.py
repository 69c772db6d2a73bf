"""Gemini's REST API over our native aiohttp client: the JSON our mapping built, decoded once, no SDK involved.

It implements the shared :class:`~spoon_llm.providers._transport.VendorTransport` (plus the
:class:`~._transport.GeminiTransport` ``events`` iterator the google-genai paths also offer), and reproduces
what they send and report: ``{base}/{api_version}/{model}:{method}`` URLs (``streamGenerateContent?alt=sse``),
``x-goog-api-key``, ``X-Server-Timeout`` (the timeout in whole seconds, as google-genai sends it), only status 200
counted as success, error bodies mapped as google-genai's ``APIError`` would be, an ``{"error": ...}`` chunk in a
200 stream raised, and an undecodable stream chunk reported as a cut stream.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...errors import LLMError, NetworkError, ResponseParsingError, excerpt
from ...transport import SSEParser, loads
from ...transport._sse import DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_STREAM_BYTES
from .._sse_stream import sse_stream
from .._transport import ResponseStream, encode_body
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
    """Gemini's REST API on our aiohttp client: a :class:`~spoon_llm.providers._transport.VendorTransport`.

    Paths are relative to ``{base}/{api_version}/`` (``models/x:generateContent``, ``models/x``); ``events``
    runs the shared SSE loop over ``open_stream`` and yields each chunk's JSON.
    """

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

    async def _call_headers(self, headers: Mapping[str, str] | None, timeout: float | None
                            ) -> tuple[dict[str, str] | None, float | None]:
        """Per-call headers (``auth``'s of this moment added, ``X-Server-Timeout``) and the timeout in seconds.

        The timeout is cut to whole milliseconds first, as google-genai is given it.
        """
        merged = dict(headers or {})
        if self._auth is not None:
            merged.update(await self._auth())
        seconds = int(timeout * 1000) / 1000.0 if timeout is not None else None
        header = server_timeout(seconds)
        if header is not None and not any(k.lower() == "x-server-timeout" for k in merged):
            merged["X-Server-Timeout"] = header
        return merged or None, seconds

    async def _exchange(self, method: str, path: str, body: Mapping[str, Any] | None, model: str | None,
                        headers: Mapping[str, str] | None, timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        call_headers, seconds = await self._call_headers(headers, timeout)
        reply = await self._client.request(
            method, self._url(path), body=encode_body(body, self._provider) if body is not None else None,
            headers=call_headers, timeout=seconds, model=model)
        if reply.status != 200:  # google-genai counts nothing else as success
            raise status_error(reply.status, reply.content, reply.headers, reply.reason, model=model,
                               provider=self._provider)
        return reply.content, reply.headers

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """POST ``{root}{path}`` (``models/x:generateContent``...); the 200 body and the response headers."""
        return await self._exchange("POST", path, body, model, headers, timeout)

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """GET ``{root}{path}`` (``models/x``); the 200 body."""
        return (await self._exchange("GET", path, None, model, None, timeout))[0]

    def translate(self, exc: BaseException, model: str | None) -> LLMError | None:
        """Nothing to translate: the native client raises our errors already."""
        return None

    async def open_stream(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                          timeout: float | None) -> ResponseStream:
        """POST and return at a 200 answer's headers; any other answer is read whole and raised."""
        call_headers, seconds = await self._call_headers(headers, timeout)
        response = await self._client.stream("POST", self._url(path), body=encode_body(body, self._provider),
                                             headers=call_headers, timeout=seconds, model=model)
        if response.status_code != 200:
            try:
                content = await response.aread()
            finally:
                await response.aclose()
            raise status_error(response.status_code, content, response.headers, response.reason_phrase, model=model,
                               provider=self._provider)
        return response

    async def events(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                     timeout: float | None) -> AsyncGenerator[dict[str, Any], None]:
        """``streamGenerateContent?alt=sse``: each chunk's JSON, decoded once from the event's bytes."""
        response = await self.open_stream(path, body, model, headers, timeout)
        try:
            content_type = response.headers.get("content-type") or "text/event-stream"
            if "text/event-stream" not in content_type and "json" not in content_type:  # e.g. an HTML page
                raise ResponseParsingError(f"expected an event stream, got {content_type}: "
                                           f"{excerpt(await response.aread())}", provider=self._provider, model=model)
            parser = SSEParser(max_event_bytes=self._sse_limits[0], max_stream_bytes=self._sse_limits[1],
                               provider=self._provider, model=model)
            events = _ChunkEvents(self, 200, response.headers, model)
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


if TYPE_CHECKING:
    from .._transport import VendorTransport

    def _is_vendor_transport(transport: NativeTransport) -> VendorTransport:
        return transport  # mypy checks the native transport against the shared protocol
