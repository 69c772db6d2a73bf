"""spoon-llm: one fast, fault-tolerant async interface over many LLM providers.

Importing this package loads no vendor SDK: each provider imports its SDK when it is first built.

Example::

    from spoon_llm import ConfigurationManager, get_global_registry

    registry = get_global_registry()
    print(registry.list_providers())
"""

from __future__ import annotations

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
    "hookimpl",
    "register_provider",
    "reset_global_registry",
]
