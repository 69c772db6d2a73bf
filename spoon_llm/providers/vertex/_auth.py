"""Vertex AI credentials: OAuth bearer tokens, fetched when needed and reused until shortly before they expire.

Where a token comes from, in the order the provider looks (see :func:`token_fetcher`):

* ``vertex_access_token``: one fixed token (it is never refreshed; a 401 means it has expired);
* a token provider: a callable given to the provider's constructor, or named in ``options.token_provider``
  as ``"package.module:function"``. It returns a ``str`` or an :class:`AccessToken` (sync or async); a plain
  string has no known expiry, so the callable is asked again for every request (as the OpenAI SDK does with
  Azure's token providers), while an :class:`AccessToken` with ``expires_at`` is reused until
  :data:`REFRESH_MARGIN` seconds before it expires;
* Application Default Credentials through ``google-auth`` (``pip install "spoon-llm[vertex]"``), imported only
  then; its blocking refresh runs in a worker thread.

:class:`TokenSource` holds the current token and lets one refresh run at a time; ``invalidate()`` (after a 401)
makes the next request fetch a new one.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timezone
from typing import Any

from ...errors import AuthenticationError, ConfigurationError, LLMError, register_secret, safe_cause

__all__ = ["REFRESH_MARGIN", "SCOPES", "AccessToken", "TokenProvider", "TokenSource", "adc_fetcher",
           "load_token_provider", "provider_fetcher"]

PROVIDER = "vertex"
#: The OAuth scope Vertex AI requests need.
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: A token is refreshed this many seconds before its stated expiry (google-auth itself refreshes 225 s early).
REFRESH_MARGIN = 300.0


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when it expires (seconds since the epoch; ``None``: not known)."""

    token: str
    expires_at: float | None = None

    def __repr__(self) -> str:
        return f"AccessToken(token='***', expires_at={self.expires_at!r})"


TokenProvider = Callable[[], "str | AccessToken | Awaitable[str | AccessToken]"]
Fetcher = Callable[[], Awaitable[AccessToken]]


class TokenSource:
    """The current bearer token of one deployment; fetched through ``fetch`` when missing or about to expire.

    ``clock`` (seconds since the epoch) is injectable so expiry can be tested without waiting.
    """

    def __init__(self, fetch: Fetcher, *, clock: Callable[[], float] = time.time,
                 margin: float = REFRESH_MARGIN) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._current: AccessToken | None = None
        self._lock: asyncio.Lock | None = None
        #: How many times a token was fetched (for health pages and tests).
        self.fetches = 0

    def _fresh(self) -> str | None:
        current = self._current
        if current is not None and current.expires_at is not None and \
                self._clock() < current.expires_at - self._margin:
            return current.token
        return None

    async def token(self) -> str:
        """A token valid for the next request."""
        token = self._fresh()
        if token is not None:
            return token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # concurrent requests wait for one refresh instead of each starting one
            token = self._fresh()
            if token is not None:
                return token
            current = await self._fetch()
            self.fetches += 1
            self._current = current if current.expires_at is not None else None
            return current.token

    async def headers(self) -> dict[str, str]:
        """The ``Authorization`` header for the next request."""
        return {"Authorization": f"Bearer {await self.token()}"}

    def invalidate(self) -> None:
        """Forget the current token (the API refused it): the next request fetches a new one."""
        self._current = None


def _failure(exc: BaseException, source: str) -> AuthenticationError:
    return AuthenticationError(f"could not get a Vertex AI access token from {source}: {type(exc).__name__}: {exc}",
                               provider=PROVIDER)


def _as_token(value: Any, source: str) -> AccessToken:
    if isinstance(value, AccessToken):
        token = value
    elif isinstance(value, str):
        token = AccessToken(value)
    else:
        raise AuthenticationError(f"{source} returned {type(value).__name__}; expected a str or an AccessToken",
                                  provider=PROVIDER)
    if not token.token:
        raise AuthenticationError(f"{source} returned an empty token", provider=PROVIDER)
    register_secret(token.token)  # an error body or log line quoting the token must not show it
    return token


def provider_fetcher(provider: TokenProvider, source: str = "the token provider") -> Fetcher:
    """A fetcher calling ``provider`` (sync or async); what it raises becomes an :class:`AuthenticationError`."""

    async def fetch() -> AccessToken:
        try:
            value = provider()
            if inspect.isawaitable(value):
                value = await value
        except LLMError:
            raise
        except Exception as exc:
            raise _failure(exc, source) from safe_cause(exc)
        return _as_token(value, source)

    return fetch


def load_token_provider(spec: str) -> TokenProvider:
    """The callable named by ``"package.module:function"`` (``options.token_provider``)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"options.token_provider must look like 'package.module:function', not {spec!r}",
                                 provider=PROVIDER, key="options.token_provider")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"options.token_provider {spec!r} cannot be imported: {exc}", provider=PROVIDER,
                                 key="options.token_provider") from exc
    if not callable(target):
        raise ConfigurationError(f"options.token_provider {spec!r} is not callable", provider=PROVIDER,
                                 key="options.token_provider")
    return target  # type: ignore[no-any-return]


def load_adc() -> tuple[Any, str | None]:
    """Application Default Credentials and their project (blocking: reads files, may ask the metadata server)."""
    try:
        google_auth = importlib.import_module("google.auth")
        importlib.import_module("google.auth.transport.requests")
    except ImportError as exc:
        raise ConfigurationError(
            "Vertex AI needs credentials: set vertex_access_token, options.token_provider or an API key "
            f"(express mode), or install google-auth for Application Default Credentials: "
            f"pip install \"spoon-llm[vertex]\" ({exc})", provider=PROVIDER) from exc
    failures = importlib.import_module("google.auth.exceptions")
    try:
        credentials, project = google_auth.default(scopes=list(SCOPES))
    except failures.DefaultCredentialsError as exc:
        raise ConfigurationError(
            "no Application Default Credentials for Vertex AI: run `gcloud auth application-default login`, set "
            "GOOGLE_APPLICATION_CREDENTIALS, or configure vertex_access_token / options.token_provider / an API "
            f"key ({exc})", provider=PROVIDER) from exc
    return credentials, project


def adc_fetcher(credentials: Any) -> Fetcher:
    """A fetcher refreshing google-auth ``credentials`` (in a worker thread: google-auth's refresh blocks)."""
    # One HTTP session for every refresh of this deployment (built here, in the worker thread that calls us).
    request = importlib.import_module("google.auth.transport.requests").Request()

    def refresh() -> AccessToken:
        if not credentials.valid:
            credentials.refresh(request)
        expiry = credentials.expiry  # naive UTC, or None when the credentials do not expire
        expires_at = expiry.replace(tzinfo=timezone.utc).timestamp() if expiry is not None else math.inf
        return AccessToken(str(credentials.token or ""), expires_at)

    async def fetch() -> AccessToken:
        try:
            token = await asyncio.to_thread(refresh)
        except Exception as exc:
            raise _failure(exc, "Application Default Credentials") from safe_cause(exc)
        return _as_token(token, "Application Default Credentials")

    return fetch
