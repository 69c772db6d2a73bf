"""The ``azure`` provider: Azure OpenAI, on deployment URLs or the newer ``/openai/v1`` API.

Configuration (``[providers.azure]``)::

    base_url = "https://my-resource.openai.azure.com"     # or AZURE_OPENAI_ENDPOINT
    api_key = "${AZURE_OPENAI_API_KEY}"                    # or Microsoft Entra ID, below
    api_version = "2024-10-21"                             # or OPENAI_API_VERSION; "v1" selects /openai/v1
    model = "gpt-4o"
    azure_deployments = { "gpt-4o" = "prod-gpt4o" }        # model -> deployment (default: the model name)

Requests go to ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`` (and
``/embeddings``), or with ``api_version = "v1"`` (or a ``base_url`` ending in ``/openai/v1``) to
``{endpoint}/openai/v1/chat/completions`` with the model in the body. Authentication is the ``api-key`` header, or a
Microsoft Entra ID bearer token: ``azure_ad_token`` (or ``AZURE_OPENAI_AD_TOKEN``), a token provider passed to the
constructor (``AzureOpenAIProvider(token_provider=...)``, sync or async, called for every request), or
``azure_entra_id = true``, which uses ``azure-identity``'s ``DefaultAzureCredential`` (``pip install
"spoon-llm[azure]"``). The ``sdk`` transport is the ``openai`` SDK's ``AsyncAzureOpenAI`` (``AsyncOpenAI`` for v1).

Azure's content filtering is kept: ``prompt_filter_results`` and the choice's ``content_filter_results`` land in
``LLMResponse.metadata`` (a ``content_filter`` finish reason says the answer was cut), and a request refused by the
filter raises :class:`~spoon_llm.errors.ContentFilterError` whose ``body`` holds the ``innererror`` categories.
``retry-after-ms`` on 429s is honoured like every OpenAI-compatible vendor's.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import httpx2
from pydantic import SecretStr

from ..errors import AuthenticationError, ConfigurationError, LLMError, register_secret, safe_cause
from ..transport import merge_headers, user_agent
from ._responses_route import ResponsesRoute
from .base import require_sdk
from .openai._errors import status_error
from .openai._provider import OpenAICompatibleProvider, builtin_capabilities
from .openai._transport import NativeTransport, OpenAITransport, ResponseStream

if TYPE_CHECKING:
    from ..config.models import ProviderConfig

__all__ = ["AzureOpenAIProvider", "TokenProvider"]

#: A callable returning a Microsoft Entra ID access token (a string, or an awaitable of one).
TokenProvider = Callable[[], "str | Awaitable[str]"]

#: The generally available data-plane version used when neither config nor OPENAI_API_VERSION names one.
DEFAULT_API_VERSION = "2024-10-21"
#: The scope of Azure OpenAI (Cognitive Services) access tokens.
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"


def _endpoint_and_mode(url: str, api_version: str) -> tuple[str, bool]:
    """The resource endpoint (no ``/openai`` suffix) and whether the v1 API is meant."""
    endpoint = url.rstrip("/")
    v1 = api_version == "v1"
    if endpoint.endswith("/openai/v1"):
        endpoint, v1 = endpoint[: -len("/openai/v1")], True
    elif endpoint.endswith("/openai"):
        endpoint = endpoint[: -len("/openai")]
    return endpoint, v1


class AzureRouting:
    """Either transport, with paths routed to the model's deployment and an Entra ID token added per request."""

    def __init__(self, inner: OpenAITransport, *, label: str, base_url: str, deployments: Mapping[str, str],
                 api_version: str, v1: bool, query_in_path: bool, token: Callable[[], Awaitable[str]] | None) -> None:
        self.inner = inner
        self._label = label
        self._base = base_url.rstrip("/")
        self._deployments = dict(deployments)
        self._query = "" if v1 or not query_in_path else f"?api-version={api_version}"
        self._v1 = v1
        self._token = token
        self._paths: dict[tuple[str, str | None], str] = {}

    def path(self, path: str, model: str | None) -> str:
        """The path (relative to ``{endpoint}/openai``, or ``/openai/v1``) of an operation for ``model``."""
        key = (path, model)
        found = self._paths.get(key)
        if found is None:
            if self._v1:
                found = path
            elif path in ("chat/completions", "completions", "embeddings") and model:
                found = f"deployments/{self._deployments.get(model, model)}/{path}{self._query}"
            else:  # e.g. the health check's "models"
                found = f"{path}{self._query}"
            self._paths[key] = found
        return found

    async def _headers(self, headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
        if self._token is None:
            return headers
        token = await self._token()
        return {**(headers or {}), "Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                   timeout: float | None) -> tuple[bytes, Mapping[str, str]]:
        """POST to the deployment of ``model``."""
        return await self.inner.post(self.path(path, model), body, model, await self._headers(headers), timeout)

    async def open_stream(self, path: str, body: Mapping[str, Any], model: str, headers: Mapping[str, str] | None,
                          timeout: float | None) -> ResponseStream:
        """Open a stream from the deployment of ``model``."""
        return await self.inner.open_stream(self.path(path, model), body, model, await self._headers(headers),
                                            timeout)

    async def get(self, path: str, timeout: float | None, model: str | None) -> bytes:
        """GET a resource-level path (``models``: the free health probe)."""
        inner = self.inner
        if self._token is None or not isinstance(inner, NativeTransport):
            return await inner.get(self.path(path, None), timeout, model)
        # The native GET carries the session's headers only; an Entra ID token has to come per request.
        client = inner.client
        reply = await client.request("GET", client.url(f"{self._base}/{self.path(path, None)}"),
                                     headers=await self._headers(None), timeout=timeout, model=model)
        if not 200 <= reply.status < 300:
            raise status_error(reply.status, reply.content, reply.headers, provider=self._label, model=model)
        return reply.content

    async def probe(self, url: str, timeout: float) -> int | None:
        """GET an absolute URL without credentials."""
        return await self.inner.probe(url, timeout)

    def translate(self, exc: BaseException, model: str | None) -> Any:
        """What the inner transport makes of a stream failure."""
        return self.inner.translate(exc, model)


class AzureOpenAIProvider(ResponsesRoute, OpenAICompatibleProvider):
    """Azure OpenAI (chat, streaming, tools, embeddings) on deployment or v1 URLs, api-key or Entra ID auth."""

    provider_name = "azure"
    capabilities = builtin_capabilities("azure")
    default_model: ClassVar[str | None] = None
    # A key or an Entra ID token: checked in _setup, which knows about both.
    requires_api_key: ClassVar[bool] = False
    api_key_env: ClassVar[str | None] = "AZURE_OPENAI_API_KEY"
    known_models: ClassVar[tuple[str, ...]] = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-5",
                                               "gpt-5-mini", "o4-mini", "text-embedding-3-small")
    default_embedding_model: ClassVar[str | None] = "text-embedding-3-small"

    def __init__(self, *, client: Any = None, http_transport: httpx2.AsyncBaseTransport | None = None,
                 token_provider: TokenProvider | None = None) -> None:
        super().__init__(client=client, http_transport=http_transport)
        self._token_provider = token_provider
        self._credential: Any = None
        self._token_fn: Callable[[], Awaitable[str]] | None = None
        self._api_version = DEFAULT_API_VERSION
        self._endpoint = ""
        self._v1 = False

    # -- configuration --------------------------------------------------------------------------------------

    @property
    def api_key(self) -> str | None:
        """The configured key, else ``AZURE_OPENAI_API_KEY`` (never logged)."""
        return self.config.primary_api_key() or os.environ.get("AZURE_OPENAI_API_KEY") or None

    def _static_token(self) -> str | None:
        token = self.config.azure_ad_token
        value = token.get_secret_value() if token is not None else os.environ.get("AZURE_OPENAI_AD_TOKEN")
        return value or None

    def _resolve_base_url(self) -> str | None:
        url = self.config.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not url:
            return None
        version = self.config.api_version or os.environ.get("OPENAI_API_VERSION") or DEFAULT_API_VERSION
        endpoint, v1 = _endpoint_and_mode(url, version)
        return f"{endpoint}/openai/v1" if v1 else f"{endpoint}/openai"

    async def _setup(self) -> None:
        cfg = self.config
        section = f"providers.{cfg.name or self.provider_name}"
        url = cfg.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not url:
            raise ConfigurationError(
                "no Azure OpenAI endpoint: set AZURE_OPENAI_ENDPOINT or add base_url = "
                f'"https://<resource>.openai.azure.com" to [{section}]', provider=self.provider_name,
                key=f"{section}.base_url",
            )
        self._api_version = cfg.api_version or os.environ.get("OPENAI_API_VERSION") or DEFAULT_API_VERSION
        self._endpoint, self._v1 = _endpoint_and_mode(url, self._api_version)
        self._token_fn = self._make_token_fn(section)
        if self._token_fn is not None and self.config.primary_api_key():
            raise ConfigurationError(
                f"Azure OpenAI: api_key and a Microsoft Entra ID token are both configured in [{section}]; keep one "
                "(remove api_key, or unset AZURE_OPENAI_API_KEY when it came from the environment)",
                provider=self.provider_name, key=f"{section}.api_key",
            )
        if self._token_fn is None and not self.api_key:
            raise ConfigurationError(
                f"no credentials for Azure OpenAI: set AZURE_OPENAI_API_KEY, add api_key to [{section}], or use "
                'Microsoft Entra ID (azure_entra_id = true with pip install "spoon-llm[azure]", azure_ad_token, '
                "or AzureOpenAIProvider(token_provider=...))", provider=self.provider_name, key=f"{section}.api_key",
            )
        try:
            await super()._setup()
        except BaseException:
            await self._close_credential()
            raise

    def _make_token_fn(self, section: str) -> Callable[[], Awaitable[str]] | None:
        sources = [name for name, given in (("token_provider", self._token_provider is not None),
                                            ("azure_entra_id", self.config.azure_entra_id),
                                            ("azure_ad_token", self._static_token() is not None)) if given]
        if len(sources) > 1:
            raise ConfigurationError(
                f"Azure OpenAI: choose one Entra ID token source, not {' and '.join(sources)} ([{section}])",
                provider=self.provider_name, key=f"{section}.azure_entra_id",
            )
        provider: Callable[[], Any] | None = self._token_provider
        if self.config.azure_entra_id:
            provider = self._entra_provider(section)
        static = self._static_token()
        if static is not None:
            register_secret(static)
            provider = lambda: static  # noqa: E731 - a constant token
        if provider is None:
            return None
        call = provider

        async def token() -> str:
            try:
                value = call()
                if inspect.isawaitable(value):
                    value = await value
            except LLMError:
                raise
            except Exception as exc:  # azure-identity's CredentialUnavailableError and the like: our error tree
                raise AuthenticationError(f"could not get an Entra ID token: {type(exc).__name__}: {exc}",
                                          provider=self.provider_name) from safe_cause(exc)
            if not isinstance(value, str) or not value:
                raise ConfigurationError("the Entra ID token provider returned no token",
                                         provider=self.provider_name)
            register_secret(value)
            return value

        return token

    def _entra_provider(self, section: str) -> Callable[[], Awaitable[str]]:
        try:
            from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider
        except ImportError as exc:
            raise ConfigurationError(
                f'azure_entra_id = true needs azure-identity: pip install "spoon-llm[azure]" ({exc})',
                provider=self.provider_name, key=f"{section}.azure_entra_id",
            ) from exc
        self._credential = DefaultAzureCredential()
        provider: Callable[[], Awaitable[str]] = get_bearer_token_provider(self._credential, ENTRA_SCOPE)
        return provider

    def _responses_config(self) -> ProviderConfig | None:
        """With ``api = "responses"``: the Responses API on ``{endpoint}/openai/v1``.

        The key (or a fixed Entra ID token) is its bearer credential, as Azure's v1 API takes it.
        """
        cfg = self.config
        if cfg.api != "responses":
            return None
        section = f"providers.{cfg.name or self.provider_name}"
        static = self._static_token()
        if self._token_fn is not None and static is None:
            raise ConfigurationError(
                f'api = "responses" on Azure OpenAI takes api_key or a fixed azure_ad_token ([{section}]); a token '
                "provider or azure_entra_id is not supported on the Responses API yet: use the default api = \"chat\"",
                provider=self.provider_name, key=f"{section}.api",
            )
        headers = {k: v for k, v in cfg.extra_headers.items() if k.lower() != "authorization"}
        credential = static or self.api_key
        return cfg.model_copy(update={"base_url": f"{self._endpoint}/openai/v1", "api_keys": [],
                                      "api_key": SecretStr(credential) if credential else None, "azure_ad_token": None,
                                      "extra_headers": headers})

    # -- transports -----------------------------------------------------------------------------------------

    def _openai_headers(self, api_key: str | None, headers: Mapping[str, str]) -> dict[str, str]:
        # Azure's key travels in ``api-key`` (a Bearer header is read as an Entra ID token); tokens come per request.
        base = {"Accept": "application/json", "User-Agent": user_agent()}
        if api_key and self._token_fn is None:
            base["api-key"] = api_key
        return merge_headers(base, dict(headers))

    def _keyless(self, api_key: str | None) -> bool:
        return False  # the routing layer adds the Entra ID token as a per-request Authorization header

    def _wrap_transport(self, transport: OpenAITransport) -> OpenAITransport:
        # The SDK adds api-version (default_query) and the token itself; the native path needs both from us.
        native = self.transport_name == "native"
        return AzureRouting(transport, label=self._label, base_url=self._resolve_base_url() or "",
                            deployments=self.config.azure_deployments, api_version=self._api_version,
                            v1=self._v1, query_in_path=native, token=self._token_fn if native else None)

    def _build_sdk_client(self, transport: str, http_transport: httpx2.AsyncBaseTransport | None
                          ) -> tuple[Any, httpx2.AsyncClient, dict[str, Any]]:
        """``AsyncAzureOpenAI`` for deployment URLs, ``AsyncOpenAI`` for v1 (both with ``max_retries=0``)."""
        openai = require_sdk("openai", "openai")
        http = self._build_http_client(openai, transport, http_transport)
        key = None if self._token_fn is not None else self.api_key
        token = self._token_fn
        headers = dict(self._sdk_headers)
        common: dict[str, Any] = {"max_retries": 0, "timeout": self._timeout(), "http_client": http}
        if self._v1:
            if key:
                headers["api-key"] = key
            auth: dict[str, Any] = {} if token is not None else {"Authorization": openai.Omit()}
            client = openai.AsyncOpenAI(api_key=token if token is not None else "unused",
                                        base_url=f"{self._endpoint}/openai/v1", default_headers={**headers, **auth},
                                        **common)
            client.organization = client.project = None  # never OPENAI_ORG_ID / OPENAI_PROJECT_ID from the env
            return client, http, auth
        client = openai.AsyncAzureOpenAI(azure_endpoint=self._endpoint, api_version=self._api_version,
                                         api_key=key, azure_ad_token_provider=token, default_headers=headers,
                                         **common)
        client.organization = client.project = None
        return client, http, {}

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def _close_credential(self) -> None:
        credential, self._credential = self._credential, None
        if credential is not None:
            await credential.close()

    async def _close(self) -> None:
        try:
            await super()._close()
        finally:
            await self._close_credential()

    def deployment_for(self, model: str) -> str:
        """The deployment name requests for ``model`` go to (``azure_deployments``, else the model name)."""
        return self.config.azure_deployments.get(model, model)
