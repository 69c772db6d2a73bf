"""spoon-llm: one fast, fault-tolerant async interface over many LLM providers.

Importing this package loads no vendor SDK: each provider imports its SDK when it is first built.

Example::

    from spoon_llm import LLMManager

    async with LLMManager() as manager:
        response = await manager.chat("Hello", model="sonnet")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import ConfigurationManager, ProviderConfig
from .errors import (
    AuthenticationError,
    BudgetExceededError,
    ConfigurationError,
    ContentFilterError,
    InvalidRequestError,
    LLMError,
    ModelNotFoundError,
    NetworkError,
    PermissionDeniedError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseParsingError,
    ServiceUnavailableError,
    StreamInterruptedError,
    TimeoutError,
    TokenLimitError,
    ValidationError,
)
from .hookspecs import hookimpl
from .interface import LLMProviderInterface, ProviderCapability, ProviderMetadata
from .registry import LLMProviderRegistry, get_global_registry, register_provider, reset_global_registry
from .types import (
    Attempt,
    CostInfo,
    DocumentPart,
    EmbeddingResponse,
    FinishReason,
    FunctionCall,
    ImagePart,
    LLMResponse,
    LLMResponseChunk,
    Message,
    TextPart,
    TokenUsage,
    ToolCall,
    ToolSpec,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .manager import LLMManager, get_llm_manager, set_llm_manager

# The manager pulls in asyncio and the routing machinery: load it on first use, not at import.
_LAZY = {"LLMManager": ".manager", "get_llm_manager": ".manager", "set_llm_manager": ".manager"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "Attempt",
    "AuthenticationError",
    "BudgetExceededError",
    "ConfigurationError",
    "ConfigurationManager",
    "ContentFilterError",
    "CostInfo",
    "DocumentPart",
    "EmbeddingResponse",
    "FinishReason",
    "FunctionCall",
    "ImagePart",
    "InvalidRequestError",
    "LLMError",
    "LLMManager",
    "LLMProviderInterface",
    "LLMProviderRegistry",
    "LLMResponse",
    "LLMResponseChunk",
    "Message",
    "ModelNotFoundError",
    "NetworkError",
    "PermissionDeniedError",
    "ProviderCapability",
    "ProviderConfig",
    "ProviderError",
    "ProviderMetadata",
    "ProviderUnavailableError",
    "RateLimitError",
    "ResponseParsingError",
    "ServiceUnavailableError",
    "StreamInterruptedError",
    "TextPart",
    "TimeoutError",
    "TokenLimitError",
    "TokenUsage",
    "ToolCall",
    "ToolSpec",
    "ValidationError",
    "__version__",
    "get_global_registry",
    "get_llm_manager",
    "hookimpl",
    "register_provider",
    "reset_global_registry",
    "set_llm_manager",
]
