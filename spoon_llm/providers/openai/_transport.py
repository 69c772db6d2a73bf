"""How OpenAI-compatible requests travel: the official SDK's low-level calls, or our native aiohttp client.

Both transports take the JSON body (encoded once by :func:`~spoon_llm.providers._transport.encode_body`, orjson)
and hand back raw bytes; the
provider decodes them with the shared wire mapping, so the two can only differ in how bytes move. Each raises
our errors: a non-2xx answer becomes the mapped :class:`~spoon_llm.errors.ProviderError` (the SDK path through
the SDK's typed exceptions, the native path through :func:`._errors.status_error`, which reproduces them),
a transport failure a :class:`~spoon_llm.errors.NetworkError` / :class:`~spoon_llm.errors.TimeoutError`.

Both implement the shared :class:`~spoon_llm.providers._transport.VendorTransport`. A stream comes back as a
:class:`~spoon_llm.providers._transport.ResponseStream` (an ``httpx2.Response`` or a
:class:`~spoon_llm.transport._native.NativeStream`); :meth:`translate` is each transport's one error-mapping seam
(the SDK calls run inside :class:`~spoon_llm.providers._transport.ErrorScope` with it; the stream loop applies it
to what a read raises). Neither closes the clients: the provider owns and closes them.
"""

from __future__ import annotations

import os
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import httpx2

from ...errors import LLMError
from ...transport import merge_headers, user_agent
from .._transport import ErrorScope, ResponseStream, VendorTransport, encode_body, open_native_stream
from ._errors import map_exception, status_error

if TYPE_CHECKING:
    from ...config.models import ProviderConfig
    from ...transport._native import NativeClient

__all__ = ["NativeTransport", "OpenAITransport", "ResponseStream", "SdkTransport", "native_headers"]


class OpenAITransport(VendorTransport, Protocol):
    """The shared transport protocol plus the credential-free probe vLLM's health check uses."""

    async def probe(self, url: str, timeout: float) -> int | None:
        """GET an absolute URL without credentials; its status (``None``: this transport cannot)."""


def native_headers(config: ProviderConfig, api_key: str | None, custom: Mapping[str, str], *,
                   env_defaults: bool) -> dict[str, str]:
    """The headers every native request of a deployment carries, as the ``openai`` SDK would send them.

    ``Authorization: Bearer`` when there is a key (none at all otherwise), ``OpenAI-Organization`` /
    ``OpenAI-Project`` when configured (or, for OpenAI itself, from ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``
    like the SDK), our own ``User-Agent``, then the provider's and configured headers over them. The SDK's
    ``X-Stainless-*`` telemetry headers are not sent.
    """
    headers = {"Accept": "application/json", "User-Agent": user_agent()}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    organization = config.organization or (os.environ.get("OPENAI_ORG_ID") if env_defaults else None)
    project = config.project or (os.environ.get("OPENAI_PROJECT_ID") if env_defaults else None)
    if organization:
        headers["OpenAI-Organization"] = organization
    if project:
        headers["OpenAI-Project"] = project
    return merge_headers(headers, dict(custom))


class SdkTransport:
    """The ``openai`` SDK's ``post``/``get`` with ``cast_to=httpx2.Response``: the SDK moves bytes, we decode."""

    def __init__(self, client: Any, http: httpx2.AsyncClient | None, label: str,
                 auth_headers: Mapping[str, Any]) -> None:
        self.client = client
        self.http = http
        self._label = label
        self._auth_headers = dict(auth_headers)
        self._base_options: dict[str, Any] = {"headers": self._auth_headers} if self._auth_headers else {}

    def _options(self, headers: Mapping[str, str] | None, timeout: float | None) -> dict[str, Any]:
        if headers is None and timeout is None:
            return self._base_options
        options: dict[str, Any] = {}
        if headers:
            options["headers"] = {**headers, **self._auth_headers}
        elif self._auth_headers:
            options["headers"] = self._auth_headers
        if timeout is not None:
            options["timeout"] = timeout
        return options

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """POST through the SDK (it raises its typed errors for non-2xx answers; mapped here)."""
        options = self._options(headers, timeout)
        with ErrorScope(self.translate, model):
            response = await self.client.post(path, cast_to=httpx2.Response,
                                              content=encode_body(body, self._label), options=options)
        return response.content, response.headers

    async def open_stream(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                          timeout: float | None) -> ResponseStream:
        """POST with ``stream=True``: the SDK returns the open ``httpx2.Response``."""
        options = self._options(headers, timeout)
        with ErrorScope(self.translate, model):
            response: ResponseStream = await self.client.post(path, cast_to=httpx2.Response,
                                                              content=encode_body(body, self._label),
                                                              options=options, stream=True)
        return response

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """GET through the SDK."""
        with ErrorScope(self.translate, model):
            response = await self.client.get(path, cast_to=httpx2.Response, options=self._options(None, timeout))
        content: bytes = response.content
        return content

    async def probe(self, url: str, timeout: float) -> int | None:
        """GET with the bare httpx2 client (no SDK headers); ``None`` for an injected SDK client."""
        if self.http is None:
            return None
        with ErrorScope(self.translate, None):
            response = await self.http.get(url, timeout=timeout)
        return response.status_code

    def translate(self, exc: BaseException, model: str | None) -> LLMError | None:
        """SDK and httpx2 exceptions, by type."""
        return map_exception(exc, provider=self._label, model=model)


class NativeTransport:
    """Our aiohttp client: URLs parsed once per path, the deployment's headers set once on the session."""

    def __init__(self, client: NativeClient, base_url: str, label: str, *, keyless: bool) -> None:
        self.client = client
        self._base = base_url.rstrip("/")
        self._label = label
        self._keyless = keyless
        self._urls: dict[str, Any] = {}

    def _url(self, path: str) -> Any:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = self.client.url(f"{self._base}/{path}")
        return url

    def _call_headers(self, headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
        if headers and self._keyless:
            # As on the SDK path, a deployment without a key never sends one, even when a call adds it.
            return {k: v for k, v in headers.items() if k.lower() != "authorization"}
        return headers

    def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
             timeout: float | None) -> Coroutine[Any, Any, tuple[bytes, Mapping[str, str]]]:
        """POST; a non-2xx answer raises the error the SDK path would (the client's coroutine, handed on)."""
        label = self._label

        def refuse(status: int, content: bytes, response_headers: Mapping[str, str]) -> LLMError:
            return status_error(status, content, response_headers, provider=label, model=model)

        return self.client.post_ok(self._url(path), encode_body(body, label), self._call_headers(headers), timeout,
                                   model, refuse)

    async def open_stream(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                          timeout: float | None) -> ResponseStream:
        """POST and return at the headers; a non-2xx answer is read whole and raised as the SDK path would."""
        return await open_native_stream(
            self.client, self._url(path), encode_body(body, self._label), self._call_headers(headers), timeout, model,
            lambda status, content, response_headers: status_error(status, content, response_headers,
                                                                   provider=self._label, model=model))

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """GET; a non-2xx answer raises."""
        reply = await self.client.request("GET", self._url(path), timeout=timeout, model=model)
        if not 200 <= reply.status < 300:
            raise status_error(reply.status, reply.content, reply.headers, provider=self._label, model=model)
        return reply.content

    async def probe(self, url: str, timeout: float) -> int | None:
        """GET an absolute URL; its status."""
        return (await self.client.request("GET", self.client.url(url), timeout=timeout)).status

    def translate(self, exc: BaseException, model: str | None) -> LLMError | None:
        """Nothing to translate: the native client raises our errors already."""
        return None
