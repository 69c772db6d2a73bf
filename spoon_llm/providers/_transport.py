"""The vendor-transport seam every provider family shares: one protocol, one error-mapping scope.

Each vendor has a native implementation (our aiohttp client, :mod:`spoon_llm.transport`) and an SDK one (the
vendor's official client asked for raw bytes), both satisfying :class:`VendorTransport`: the provider builds the
JSON body, the transport moves bytes and raises our errors, the provider decodes with the shared wire mapping.
What an SDK call or a stream read raises is mapped in one place per transport, its ``translate`` method, applied
by :class:`ErrorScope` (the way httpx maps httpcore's exceptions in ``map_httpcore_exceptions``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..errors import LLMError, ProviderError, ResponseParsingError, ValidationError, safe_cause
from ..transport import dumps, loads

if TYPE_CHECKING:
    from ..transport._native import NativeClient, NativeStream

__all__ = ["ErrorScope", "ResponseStream", "VendorTransport", "encode_body", "error_body", "json_answer",
           "open_native_stream"]


class ResponseStream(Protocol):
    """A streamed answer: what a stream loop needs of either transport's response object."""

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers (case-insensitive lookups)."""

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""

    async def aread(self) -> bytes:
        """The whole body."""

    async def aclose(self) -> None:
        """Give the connection back (or close it)."""


class VendorTransport(Protocol):
    """What a provider asks of a transport: the JSON body in, the 2xx answer's bytes out.

    The body is a mapping, encoded once by :func:`encode_body` (or by the SDK where it routes on the body).
    A non-2xx answer raises the vendor's mapped :class:`~spoon_llm.errors.ProviderError` (the native transport
    from the status and body, the SDK one through ``translate``), a failure to connect or read a
    :class:`~spoon_llm.errors.NetworkError` or timeout error.
    """

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """POST the JSON ``body`` to ``path``; the 2xx body and headers."""

    async def open_stream(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                          timeout: float | None) -> ResponseStream:
        """POST the JSON ``body`` to ``path`` and return once a 2xx answer's headers arrived."""

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """GET ``path`` (relative to the base URL); the 2xx body."""

    def translate(self, exc: BaseException, model: str | None) -> LLMError | None:
        """Our error for what a call or a stream read raised (``None``: not this transport's failure)."""


class ErrorScope:
    """``with`` / ``async with`` block that re-raises what ``translate`` maps as our error, ``from`` the original.

    ``translate(exc, model)`` returns our error or ``None`` (the exception then propagates unchanged).

    Example::

        with ErrorScope(transport.translate, model):
            response = await client.post(...)
    """

    __slots__ = ("_model", "_translate")

    def __init__(self, translate: Callable[[BaseException, str | None], LLMError | None], model: str | None) -> None:
        self._translate = translate
        self._model = model

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if exc is None:
            return False
        # Our own errors go through ``translate`` too (it returns ``None`` for them): a provider may need to see
        # them (Vertex AI drops a refused token).
        mapped = self._translate(exc, self._model)
        if mapped is None or mapped is exc:
            return False
        raise mapped from safe_cause(exc)

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)


async def open_native_stream(native: NativeClient, url: Any, payload: bytes, headers: Mapping[str, str] | None,
                             timeout: float | None, model: str | None,
                             status_error: Callable[[int, bytes, Mapping[str, str]], ProviderError]) -> NativeStream:
    """POST on the native client and return at a 2xx answer's headers.

    Any other status is read whole, the connection given back, and ``status_error(status, body, headers)`` (the
    vendor's error mapping) raised.
    """
    stream = await native.stream("POST", url, body=payload, headers=headers, timeout=timeout, model=model)
    if not 200 <= stream.status_code < 300:
        try:
            content = await stream.aread()
        finally:
            await stream.aclose()
        raise status_error(stream.status_code, content, stream.headers)
    return stream


def json_answer(content: bytes, *, provider: str, model: str | None) -> Any:
    """A 2xx body decoded; one that is not JSON is a :class:`~spoon_llm.errors.ResponseParsingError`."""
    try:
        return loads(content)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise ResponseParsingError(f"the response is not valid JSON: {exc}", provider=provider,
                                   model=model) from exc


def error_body(content: bytes) -> Any:
    """A non-2xx body as the SDKs keep it: the stripped text decoded as JSON when it is JSON, else the text."""
    text = content.decode("utf-8", errors="replace").strip()
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to decode, kept as text like any other
        return text


def encode_body(body: Mapping[str, Any], provider: str) -> bytes:
    """A request body as JSON bytes; one that cannot be (a set, an object) is our :class:`ValidationError`."""
    try:
        return dumps(body)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"the request cannot be sent as JSON: {exc}", provider=provider) from exc
