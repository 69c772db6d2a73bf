"""How Anthropic requests travel: our native aiohttp client, or the official SDK's generic ``post``/``get``.

Both implement the shared :class:`~spoon_llm.providers._transport.VendorTransport`: the provider hands over the
API path and the JSON body, the transport moves it and returns the 2xx body's bytes (or the open stream), so the
two can only differ in how bytes move. The native transport asks ``target`` for the URL and wire body of a path
(Claude on Vertex AI moves the model into the URL) and maps a non-2xx answer with :func:`._errors.status_error`;
the SDK one asks for ``cast_to=httpx2.Response`` (no SDK models are built) and maps what escapes through
``translate``, its one error seam (the provider's ``_translate_sdk``). The SDK keeps the body as a mapping: the
Vertex AI client routes by the body's ``model``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...errors import LLMError
from .._transport import ErrorScope, ResponseStream, encode_body, open_native_stream
from ._errors import status_error

if TYPE_CHECKING:
    from ...transport._native import NativeClient

__all__ = ["NativeTransport", "SdkTransport", "Target"]

#: ``target(path, body, model, stream)``: the URL and wire body of an API path on the native transport.
Target = Callable[[str, Mapping[str, Any] | None, str, bool], tuple[Any, Mapping[str, Any] | None]]


class NativeTransport:
    """Anthropic's API on our aiohttp client (the deployment's headers set once on the session)."""

    def __init__(self, client: NativeClient, target: Target, provider: str) -> None:
        self.client = client
        self._target = target
        self._provider = provider

    def _status_error(self, model: str | None) -> Callable[[int, bytes, Mapping[str, str]], Any]:
        return lambda status, content, headers: status_error(status, content, headers, model=model)

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """POST; a non-2xx answer raises the error the SDK path would."""
        url, wire = self._target(path, body, model, False)
        reply = await self.client.request("POST", url, body=encode_body(wire or {}, self._provider),
                                          headers=headers, timeout=timeout, model=model)
        if not 200 <= reply.status < 300:
            raise status_error(reply.status, reply.content, reply.headers, model=model)
        return reply.content, reply.headers

    async def open_stream(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                          timeout: float | None) -> ResponseStream:
        """POST and return at a 2xx answer's headers."""
        url, wire = self._target(path, body, model, True)
        return await open_native_stream(self.client, url, encode_body(wire or {}, self._provider), headers, timeout,
                                        model, self._status_error(model))

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """GET (``path`` may carry a query); a non-2xx answer raises."""
        url, _ = self._target(path, None, model or "", False)
        reply = await self.client.request("GET", url, timeout=timeout, model=model)
        if not 200 <= reply.status < 300:
            raise status_error(reply.status, reply.content, reply.headers, model=model)
        return reply.content

    def translate(self, exc: BaseException, model: str | None) -> LLMError | None:
        """Nothing to translate: the native client raises our errors already."""
        return None


class SdkTransport:
    """``AsyncAnthropic``'s (or ``AsyncAnthropicVertex``'s) generic calls with ``cast_to=httpx2.Response``."""

    def __init__(self, client: Any, raw: type[Any], translate: Callable[[BaseException, str | None], LLMError | None]
                 ) -> None:
        self.client = client
        self._raw = raw
        self.translate = translate

    @staticmethod
    def _options(headers: Mapping[str, str] | None, timeout: float | None) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if timeout is not None:
            options["timeout"] = timeout
        if headers:
            options["headers"] = headers
        return options

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """POST through the SDK (its typed errors mapped by ``translate``)."""
        with ErrorScope(self.translate, model):
            response = await self.client.post(path, cast_to=self._raw, body=body,
                                              options=self._options(headers, timeout))
        return response.content, response.headers

    async def open_stream(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                          timeout: float | None) -> ResponseStream:
        """POST with ``stream=True``: the SDK returns the open ``httpx2.Response``."""
        with ErrorScope(self.translate, model):
            response: ResponseStream = await self.client.post(path, cast_to=self._raw, body=body,
                                                              options=self._options(headers, timeout), stream=True,
                                                              stream_cls=None)
        return response

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """GET through the SDK."""
        with ErrorScope(self.translate, model):
            response = await self.client.get(path, cast_to=self._raw, options=self._options(None, timeout))
        content: bytes = response.content
        return content
