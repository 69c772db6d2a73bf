"""How Responses API requests travel: our native aiohttp client, or the ``openai`` SDK's ``responses.create``.

Both implement the shared :class:`~spoon_llm.providers._transport.VendorTransport`: the provider hands over the
API path and the JSON body, the transport moves it and returns the 2xx body's bytes (or the open stream), and
the provider decodes them with the shared wire mapping, so the two can only differ in how bytes move.

The native transport is the OpenAI-compatible one (:class:`spoon_llm.providers.openai.NativeTransport`): it
posts ``{base_url}/{path}`` with the headers the SDK sends and maps a non-2xx answer as the SDK would. The SDK
transport extends the OpenAI-compatible one: ``responses`` goes through
``client.responses.with_raw_response.create(...)`` -- the SDK builds the request (the fields ``create`` names as
such, the rest as ``extra_body``) and we read the raw ``httpx2.Response``, no SDK model objects -- while other
paths (``GET models``) use the SDK's generic calls. Neither closes the clients: the provider does.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from .._transport import ErrorScope, ResponseStream
from ..openai._transport import NativeTransport
from ..openai._transport import SdkTransport as _CompatSdkTransport
from ._convert import PROVIDER

__all__ = ["MODELS", "RESPONSES", "NativeTransport", "SdkTransport"]

#: The API path of a response (``POST``); the SDK transport sends it through ``responses.create``.
RESPONSES = "responses"
#: The model listing (``GET``).
MODELS = "models"


class SdkTransport(_CompatSdkTransport):
    """``AsyncOpenAI``: ``responses.with_raw_response.create`` for ``responses``, the generic calls otherwise."""

    def __init__(self, client: Any) -> None:
        super().__init__(client, None, PROVIDER, {})
        # Body fields ``responses.create`` names; the rest of a body travels as ``extra_body``.
        self._params = frozenset(inspect.signature(client.responses.create).parameters) - {
            "extra_headers", "extra_query", "extra_body", "timeout"}

    def _create_kwargs(self, body: Mapping[str, Any], headers: Mapping[str, str] | None,
                       timeout: float | None) -> dict[str, Any]:
        """``responses.create`` keyword arguments for ``body``: named fields as such, the rest as extra_body."""
        named = {k: v for k, v in body.items() if k in self._params}
        extra = {k: v for k, v in body.items() if k not in self._params}
        if extra:
            named["extra_body"] = extra
        if headers:
            named["extra_headers"] = headers
        if timeout is not None:  # the SDK reads an explicit None as "no timeout at all"
            named["timeout"] = timeout
        return named

    async def _create(self, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                      timeout: float | None) -> Any:
        with ErrorScope(self.translate, model):
            raw = await self.client.responses.with_raw_response.create(**self._create_kwargs(body, headers, timeout))
        return raw.http_response

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """POST through the SDK (its typed errors for non-2xx answers mapped by ``translate``)."""
        if path != RESPONSES:
            return await super().post(path, body, model, headers, timeout)
        response = await self._create(body, model, headers, timeout)
        return response.content, response.headers

    async def open_stream(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                          timeout: float | None) -> ResponseStream:
        """POST a streamed request: the open ``httpx2.Response``, its body unread."""
        if path != RESPONSES:
            return await super().open_stream(path, body, model, headers, timeout)
        # The body carries ``stream: true``, so the SDK sends it with stream=True and returns before reading it.
        response: ResponseStream = await self._create(body, model, headers, timeout)
        return response
