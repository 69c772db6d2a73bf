"""``BaseProvider``: what every built-in provider shares (config handling, stream callbacks, defaults).

Subclasses implement ``_setup`` (build the client: an SDK's or the native one), ``chat``, ``_stream`` (yield
chunks), ``health_check``, ``_close`` and ``get_metadata``; ``completion`` and ``chat_with_tools`` default to
``chat``.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

from ..config.models import ProviderConfig
from ..errors import ConfigurationError
from ..interface import LLMProviderInterface, ProviderMetadata, StreamCallback
from ..types import (
    LLMResponse,
    LLMResponseChunk,
    Message,
    MessageInput,
    ToolSpec,
    to_messages,
)

__all__ = ["BaseProvider", "coerce_config", "require_sdk"]


def coerce_config(config: ProviderConfig | Mapping[str, Any] | None, name: str) -> ProviderConfig:
    """A :class:`ProviderConfig` from a config object or a plain dict (the older API passed dicts)."""
    if isinstance(config, ProviderConfig):
        return config if config.name else config.model_copy(update={"name": name})
    data = dict(config or {})
    data.setdefault("name", name)
    try:
        return ProviderConfig.model_validate(data)
    except Exception as exc:
        import pydantic

        if isinstance(exc, pydantic.ValidationError):
            error = exc.errors()[0]
            key = ".".join(str(p) for p in error["loc"])
            raise ConfigurationError(error["msg"], source="provider config", key=f"providers.{name}.{key}",
                                     provider=name) from None
        raise


def require_sdk(module: str, extra: str, *, native_instead: bool = False) -> Any:
    """Import a vendor SDK, or raise an error that names the extra to install.

    ``native_instead``: the SDK is needed only because the native transport is not installed, so the error
    names ``[native]`` (what the default transport needs) first and the SDK's extra as the alternative.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if native_instead:
            raise ConfigurationError(
                f"this provider needs an HTTP transport: pip install \"spoon-llm[native]\" (the default native "
                f"transport), or pip install \"spoon-llm[{extra}]\" for the {module!r} SDK transport ({exc})"
            ) from exc
        raise ConfigurationError(
            f"the {module!r} package is needed for this provider: pip install \"spoon-llm[{extra}]\" ({exc})"
        ) from exc


class BaseProvider(LLMProviderInterface):
    """Common behaviour of the built-in providers."""

    #: Model used when neither the call nor the configuration names one.
    default_model: ClassVar[str | None] = None
    #: Endpoint used when the configuration gives none.
    default_base_url: ClassVar[str | None] = None
    #: Whether a key is required; self-hosted endpoints (vLLM, Ollama) need none.
    requires_api_key: ClassVar[bool] = True
    #: The environment variable named in the "no key" error.
    api_key_env: ClassVar[str | None] = None

    def __init__(self) -> None:
        self.config: ProviderConfig = ProviderConfig(name=self.provider_name)
        self._initialized = False

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def initialize(self, config: ProviderConfig | Mapping[str, Any]) -> None:
        """Validate ``config`` and build the client; calling it again with a new config rebuilds the client."""
        if self._initialized:
            await self.cleanup()
        self.config = coerce_config(config, self.provider_name)
        if self.requires_api_key and not self.api_key:
            env = self.api_key_env or f"{self.provider_name.upper().replace('-', '_')}_API_KEY"
            raise ConfigurationError(
                f"no API key for provider {self.provider_name!r}: set {env} or add api_key to "
                f"[providers.{self.config.name or self.provider_name}] in the config file",
                provider=self.provider_name,
                key=f"providers.{self.config.name or self.provider_name}.api_key",
            )
        await self._setup()
        self._initialized = True

    @abstractmethod
    async def _setup(self) -> None:
        """Build the vendor client from ``self.config``."""

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Close the vendor client (override when there is one)."""

    async def cleanup(self) -> None:
        """Close the client and its connection pool."""
        if self._initialized:
            self._initialized = False
            await self._close()

    # -- config helpers -------------------------------------------------------------------------------------

    @property
    def api_key(self) -> str | None:
        """The key for this deployment (never logged)."""
        return self.config.primary_api_key()

    @property
    def base_url(self) -> str | None:
        """The configured endpoint, else the provider's default."""
        return self.config.base_url or self.default_base_url

    @property
    def model(self) -> str:
        """The configured model, else the provider's default."""
        model = self.config.model or self.default_model
        if not model:
            raise ConfigurationError(
                f"no model configured for provider {self.provider_name!r}: pass model=... or set "
                f"{self.provider_name.upper()}_MODEL",
                provider=self.provider_name,
                key=f"providers.{self.config.name or self.provider_name}.model",
            )
        return model

    def _ensure_ready(self) -> None:
        if not self._initialized:
            raise ConfigurationError(
                f"provider {self.provider_name!r} is not initialised; await provider.initialize(config) first",
                provider=self.provider_name,
            )

    # -- operations -----------------------------------------------------------------------------------------

    async def completion(self, prompt: str, **kwargs: Any) -> LLMResponse:
        """Complete a prompt as one user message through chat."""
        return await self.chat([Message(role="user", content=prompt)], **kwargs)

    async def chat_with_tools(
        self,
        messages: Sequence[MessageInput],
        tools: Sequence[ToolSpec | Mapping[str, Any]],
        **kwargs: Any,
    ) -> LLMResponse:
        """Chat with tools the model may call."""
        return await self.chat(messages, tools=tools, **kwargs)

    async def chat_stream(
        self,
        messages: Sequence[MessageInput],
        callbacks: Sequence[StreamCallback] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[LLMResponseChunk]:
        """Stream the answer; each chunk is also passed to every callback (sync or async) in order."""
        self._ensure_ready()
        async for chunk in self._stream(to_messages(messages), **kwargs):
            for callback in callbacks or ():
                result = callback(chunk)
                if inspect.isawaitable(result):
                    await result
            yield chunk

    @abstractmethod
    def _stream(self, messages: list[Message], **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        """Yield the chunks of one streamed answer; the last has kind ``final``."""

    def get_metadata(self) -> ProviderMetadata:
        """Name, capabilities and defaults of this provider."""
        return ProviderMetadata(
            name=self.provider_name,
            capabilities=list(self.capabilities),
            default_model=self.config.model or self.default_model,
            base_url=self.base_url,
            requires_api_key=self.requires_api_key,
            available_models=list(self.config.models),
        )

    def __repr__(self) -> str:
        # Never show the key: only what identifies the deployment.
        return (
            f"{type(self).__name__}(provider={self.provider_name!r}, model={self.config.model!r}, "
            f"base_url={self.base_url!r}, initialized={self._initialized})"
        )
