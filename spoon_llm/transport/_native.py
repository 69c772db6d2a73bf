"""The native transport: one aiohttp session and connector per deployment, bytes in and bytes out.

A :class:`NativeClient` belongs to one provider instance (one deployment on one event loop, as the manager builds
them). It is built off the loop (importing aiohttp costs ~150 ms), opened inside the running loop by the
provider's ``initialize`` and closed by its ``cleanup``. Everything that can be decided once is: the session's
default headers (auth, versions, content type, our user agent), the URLs (parsed once into ``yarl.URL``), the
timeouts, the proxy. Cookies are not kept (an API client has no use for them and the jar costs CPU per response).

Transport failures are translated here, so providers never see an aiohttp type: timeouts become our
:class:`~spoon_llm.errors.TimeoutError`, refused/reset/dropped connections and cut bodies become
:class:`~spoon_llm.errors.NetworkError` (both retryable); the provider maps statuses and bodies itself. The aiohttp
exception is chained through :func:`~spoon_llm.errors.safe_cause`: its ``request_info`` holds the request headers,
the API key among them.

This module imports aiohttp at the top: import it through :func:`spoon_llm.transport.load_native`, never at the
import of ``spoon_llm``.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from ..errors import NetworkError, ProviderError, safe_cause
from ..errors import TimeoutError as LLMTimeoutError
from ._config import NativeSettings

__all__ = ["NativeClient", "NativeReply", "NativeStream", "env_proxy"]

# What a failed exchange can raise: aiohttp's own errors, socket errors, and timeouts (asyncio's TimeoutError
# is not an OSError before Python 3.11).
_FAILURES = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, read once per client.

    ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` minus ``NO_PROXY``: the SDKs' httpx clients honour them too.
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or not parts.hostname:
        return None
    if urllib.request.proxy_bypass(parts.hostname):
        return None
    return proxy if urlsplit(proxy).scheme in ("http", "https") else None  # aiohttp speaks HTTP proxies only


class NativeReply(NamedTuple):
    """A whole answer: status, headers, body bytes and the status line's reason phrase."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    reason: str


def _json_payload(body: bytes) -> aiohttp.BytesPayload:
    # Labelled here rather than by a session-wide header: GET requests carry no content type, as with the SDKs.
    return aiohttp.BytesPayload(body, content_type="application/json")


class NativeClient:
    """One deployment's HTTP client: a session with its connection pool and its default headers.

    ``headers`` are sent with every request (per-call headers are merged over them by aiohttp). ``base_url``
    only serves to find the proxy. Example::

        client = NativeClient(settings, {"Authorization": "Bearer ..."}, provider="openai", base_url=url)
        client.open()                                   # inside the running loop
        reply = await client.request("POST", client.url(url + "/chat/completions"), body=b"{}")
        await client.close()
    """

    __slots__ = ("_answer_timeout", "_headers", "_proxy", "_session", "_settings", "_timeout", "provider")

    def __init__(self, settings: NativeSettings, headers: Mapping[str, str], *, provider: str,
                 base_url: str | None = None) -> None:
        self.provider = provider
        self._settings = settings
        self._headers = dict(headers)
        self._proxy = env_proxy(base_url) if base_url else None
        self._session: aiohttp.ClientSession | None = None
        self._timeout: tuple[float, aiohttp.ClientTimeout] | None = None  # the last per-call stream timeout
        self._answer_timeout: tuple[float, aiohttp.ClientTimeout] | None = None  # the last whole-answer one

    # -- lifecycle ------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the connector and the session; must run inside the event loop that will use them."""
        if self._session is not None:
            return
        settings = self._settings
        connector = (aiohttp.TCPConnector(limit=settings.max_connections, keepalive_timeout=settings.keepalive_expiry)
                     if settings.keep_alive else aiohttp.TCPConnector(limit=settings.max_connections, force_close=True))
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(connect=settings.timeout, sock_connect=settings.connect_timeout,
                                          sock_read=settings.timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            proxy=self._proxy,
        )

    async def close(self) -> None:
        """Close the session and every pooled connection."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def settings(self) -> NativeSettings:
        """The pool and timeout settings this client was built with."""
        return self._settings

    @property
    def connector_limit(self) -> int | None:
        """The open pool's connection limit (``None`` when closed)."""
        return self._session.connector.limit if self._session is not None and self._session.connector else None

    @property
    def closed(self) -> bool:
        """True before :meth:`open` and after :meth:`close`."""
        return self._session is None or self._session.closed

    # -- helpers --------------------------------------------------------------------------------------------

    @staticmethod
    def url(url: str) -> URL:
        """``url`` parsed once (pass the result to :meth:`request`: aiohttp then skips parsing it)."""
        return URL(url)

    def timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        """A stream's per-call timeout: connecting and every read each get ``seconds``, like the SDKs' timeout.

        Calls mostly repeat one value (the deployment's timeout): the last one is kept rather than rebuilt.
        """
        last = self._timeout
        if last is not None and last[0] == seconds:
            return last[1]
        made = aiohttp.ClientTimeout(connect=seconds, sock_connect=min(seconds, self._settings.connect_timeout),
                                     sock_read=seconds)
        self._timeout = (seconds, made)
        return made

    def answer_timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        """A whole answer's timeout: the exchange gets ``seconds`` (``None``: the section's ``timeout``).

        A new connection's connect gets no more than ``connect_timeout``.

        A whole answer arrives at once when it is ready, so one bound on the exchange is what a bound per read
        would be; aiohttp then arms one loop timer per request instead of one for the pool wait and one per read.
        """
        if seconds is None:
            seconds = self._settings.timeout
        last = self._answer_timeout
        if last is not None and last[0] == seconds:
            return last[1]
        made = aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, self._settings.connect_timeout))
        self._answer_timeout = (seconds, made)
        return made

    def failure(self, exc: BaseException, model: str | None) -> ProviderError:
        """Our error for a transport failure (timeouts first: asyncio's TimeoutError is an OSError on 3.11)."""
        if isinstance(exc, asyncio.TimeoutError):
            return LLMTimeoutError(f"request to {self.provider} timed out ({type(exc).__name__})",
                                   provider=self.provider, model=model)
        return NetworkError(f"connection to {self.provider} failed: {type(exc).__name__}: {exc}",
                            provider=self.provider, model=model)

    def _live_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None:
            raise NetworkError(f"the {self.provider} client is closed", provider=self.provider)
        return session

    # -- exchanges ------------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: URL | str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        params: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> NativeReply:
        """Send one request (``body``: JSON bytes) and read the whole answer.

        Any status is returned as it is: the caller maps error statuses with its vendor's error body.
        """
        session = self._live_session()
        data = _json_payload(body) if body is not None else None
        try:
            # Awaited rather than entered with ``async with``: the context manager's enter and exit are four
            # coroutines per request (one of them a layer every wake-up passes through) around what release()
            # does. release() gives the connection back when the body was read to its end and closes it otherwise.
            response = await session.request(method, url, data=data, headers=headers, params=params,
                                             timeout=self.answer_timeout(timeout))
            try:
                content = await response.read()
            finally:
                response.release()
            return NativeReply(response.status, response.headers, content, response.reason or "")
        except _FAILURES as exc:
            raise self.failure(exc, model) from safe_cause(exc)

    async def post_ok(
        self,
        url: URL | str,
        body: bytes,
        headers: Mapping[str, str] | None,
        timeout: float | None,
        model: str | None,
        refuse: Callable[[int, bytes, Mapping[str, str]], BaseException],
    ) -> tuple[bytes, Mapping[str, str]]:
        """POST ``body`` (JSON bytes): the 2xx answer's body and headers; any other status raises ``refuse(...)``.

        :meth:`request` with the status check folded in, so a transport can hand this coroutine on rather than
        await it in one of its own (every coroutine between the request and the network is paid on each wake-up).
        """
        session = self._live_session()
        try:
            response = await session.request("POST", url, data=_json_payload(body), headers=headers,
                                             timeout=self.answer_timeout(timeout))
            try:
                content = await response.read()
            finally:
                response.release()
        except _FAILURES as exc:
            raise self.failure(exc, model) from safe_cause(exc)
        status = response.status
        if not 200 <= status < 300:
            raise refuse(status, content, response.headers)
        return content, response.headers

    async def stream(
        self,
        method: str,
        url: URL | str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        model: str | None = None,
    ) -> NativeStream:
        """Send one request (``body``: JSON bytes) and return at the headers; read the body from the result."""
        session = self._live_session()
        data = _json_payload(body) if body is not None else None
        try:
            if timeout is None:
                response = await session.request(method, url, data=data, headers=headers)
            else:
                response = await session.request(method, url, data=data, headers=headers,
                                                 timeout=self.timeout(timeout))
        except _FAILURES as exc:
            raise self.failure(exc, model) from safe_cause(exc)
        return NativeStream(response, self, model)


class NativeStream:
    """An answer whose body is read as it arrives; the same small surface as an ``httpx2.Response``.

    ``aiter_bytes`` yields the body in the chunks the network delivered them; failures while reading come out
    as our errors. ``aclose`` gives the connection back to the pool when the body was read to its end, and
    closes it otherwise.
    """

    __slots__ = ("_client", "_model", "_response", "headers", "readany", "status_code")

    def __init__(self, response: aiohttp.ClientResponse, client: NativeClient, model: str | None) -> None:
        self._response = response
        self._client = client
        self._model = model
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers
        #: The body's next piece, ``b""`` at its end, straight from aiohttp: a stream loop awaits this rather than
        #: ``aiter_bytes`` (one generator less per read) and maps what it raises with :meth:`read_error`.
        self.readany: Callable[[], Awaitable[bytes]] = response.content.readany

    def read_error(self, exc: Exception) -> Exception:
        """Our error for what :attr:`readany` raised (anything not a transport failure is returned as it is)."""
        if isinstance(exc, _FAILURES):
            return self._client.failure(exc, self._model)
        return exc

    @property
    def reason_phrase(self) -> str:
        """The status line's reason (``Not Found``...)."""
        return self._response.reason or ""

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk."""
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except _FAILURES as exc:
            raise self._client.failure(exc, self._model) from safe_cause(exc)

    async def aread(self) -> bytes:
        """The whole (rest of the) body."""
        try:
            return await self._response.read()
        except _FAILURES as exc:
            raise self._client.failure(exc, self._model) from safe_cause(exc)

    async def aclose(self) -> None:
        """Release the connection (reused when the body was read to its end)."""
        self._response.release()

    def __repr__(self) -> str:
        return f"NativeStream(status={self.status_code})"
