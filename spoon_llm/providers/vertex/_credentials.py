"""What every Vertex AI provider shares: project, location, endpoint and OAuth bearer tokens.

Gemini models (:class:`~spoon_llm.providers.vertex.VertexProvider`) and Anthropic's Claude models
(:class:`~spoon_llm.providers.vertex.VertexAnthropicProvider`) are served by the same Vertex AI endpoints with the
same credentials: a fixed token (``vertex_access_token``), a token provider, google-auth credentials or Application
Default Credentials, refreshed before they expire (:mod:`._auth`). Only Gemini models have an API-key "express mode".
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

from ...config.models import ProviderConfig
from ...errors import AuthenticationError, ConfigurationError
from ._auth import AccessToken, TokenProvider, TokenSource, adc_fetcher, load_adc, load_token_provider, provider_fetcher

__all__ = ["DEFAULT_LOCATION", "GLOBAL_BASE_URL", "MULTI_REGIONS", "VertexCredentials"]

DEFAULT_LOCATION = "global"
GLOBAL_BASE_URL = "https://aiplatform.googleapis.com/"
#: Multi-region locations, served from their own domain (as google-genai knows them).
MULTI_REGIONS = frozenset({"us", "eu"})


class VertexCredentials:
    """Mixin for a provider class (before the vendor's provider class in the bases) that serves Vertex AI."""

    #: Whether an API key selects express mode (project-less paths): Gemini models only.
    supports_express: ClassVar[bool] = True
    # Provided by the provider class this is mixed into.
    provider_name: str
    config: ProviderConfig
    api_key: str | None
    _injected: Any

    def _init_credentials(self, token_provider: TokenProvider | None, credentials: Any) -> None:
        self._token_provider = token_provider
        self._credentials = credentials
        self._tokens: TokenSource | None = None
        self._project: str | None = None
        self._location = DEFAULT_LOCATION
        self._quota_project: str | None = None  # x-goog-user-project, from the credentials (as google-genai sends)

    @property
    def express(self) -> bool:
        """True in express mode: an API key and project-less paths (Gemini models only)."""
        return self.supports_express and bool(self.api_key)

    @property
    def project(self) -> str | None:
        """The Google Cloud project (``None`` in express mode)."""
        return self._project

    @property
    def location(self) -> str:
        """The Vertex AI location (region, or ``global``)."""
        return self._location

    @property
    def base_url(self) -> str | None:
        """The configured endpoint, else the one of the location."""
        if self.config.base_url:
            return self.config.base_url
        if self.express or self._location == "global":
            return GLOBAL_BASE_URL
        if self._location in MULTI_REGIONS:
            return f"https://aiplatform.{self._location}.rep.googleapis.com/"
        return f"https://{self._location}-aiplatform.googleapis.com/"

    def _auth_sources(self) -> list[str]:
        cfg = self.config
        given = {"api_key": bool(self.api_key), "vertex_access_token": cfg.vertex_access_token is not None,
                 "token_provider": self._token_provider is not None or "token_provider" in cfg.options,
                 "credentials": self._credentials is not None}
        return [name for name, present in given.items() if present]

    async def _resolve_auth(self) -> None:
        """Pick the credentials, project and location (ADC is loaded in a worker thread: it reads files)."""
        cfg = self.config
        vendor = self.provider_name
        name = cfg.name or vendor
        sources = self._auth_sources()
        if len(sources) > 1:
            raise ConfigurationError(f"the {vendor} provider takes one way to authenticate, got {sources}; keep one",
                                     provider=vendor, key=f"providers.{name}")
        if self.api_key and not self.supports_express:
            raise ConfigurationError(f"the {vendor} provider authenticates with OAuth tokens (Application Default "
                                     "Credentials, vertex_access_token or a token provider), not an API key: remove "
                                     "api_key", provider=vendor, key=f"providers.{name}.api_key")
        self._location = cfg.vertex_location or os.environ.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION
        self._project = cfg.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        self._tokens = None
        self._quota_project = None
        if self.express:
            if cfg.project or cfg.vertex_location:
                raise ConfigurationError("express mode (an API key) takes no project or vertex_location: remove them, "
                                         "or drop the key to use OAuth credentials", provider=vendor,
                                         key=f"providers.{name}.api_key")
            self._project = None
            return
        if self._injected is not None:
            return  # a ready-made SDK client authenticates itself
        if cfg.vertex_access_token is not None:
            token = AccessToken(cfg.vertex_access_token.get_secret_value())
            self._tokens = TokenSource(provider_fetcher(lambda: token, "vertex_access_token"))
        elif self._token_provider is not None or "token_provider" in cfg.options:
            provider = self._token_provider or load_token_provider(str(cfg.options["token_provider"]))
            self._tokens = TokenSource(provider_fetcher(provider))
        else:
            credentials = self._credentials
            if credentials is None:
                credentials, adc_project = await asyncio.to_thread(load_adc)
                self._project = self._project or adc_project
            self._quota_project = getattr(credentials, "quota_project_id", None)
            self._tokens = TokenSource(await asyncio.to_thread(adc_fetcher, credentials))
        if not self._project:
            raise ConfigurationError("no Google Cloud project for Vertex AI: set project (or GOOGLE_CLOUD_PROJECT), "
                                     + ("or use an API key (express mode)" if self.supports_express else
                                        "or use credentials that name one"), provider=vendor,
                                     key=f"providers.{name}.project")

    def _native_headers(self) -> dict[str, str]:
        headers: dict[str, str] = super()._native_headers()  # type: ignore[misc]
        if self._quota_project:
            headers.setdefault("x-goog-user-project", self._quota_project)
        return headers


    def _forget_refused_token(self, error: BaseException | None) -> None:
        """A refused token is dropped so that the next attempt fetches a new one."""
        if isinstance(error, AuthenticationError) and error.status_code == 401 and self._tokens is not None:
            self._tokens.invalidate()
