"""spoon-llm: one fast, fault-tolerant async interface over many LLM providers.

Importing this package loads no vendor SDK: each provider imports its SDK when it is first built.

Example::

    from spoon_llm import LLMManager

    async with LLMManager() as manager:
        response = await manager.chat("Hello", model="sonnet")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .errors import (
    AuthenticationError,
    BudgetExceededError,
    ConfigurationError,
    ContentFilterError,
    InvalidRequestError,
    LLMError,
    MaxTurnsExceededError,
    ModelNotFoundError,
    NetworkError,
    OutputValidationError,
    PermissionDeniedError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    RequestTimeoutError,
    ResponseParsingError,
    ResponseTooLargeError,
    ServiceUnavailableError,
    StateStoreError,
    StreamInterruptedError,
    TimeoutError,
    TokenLimitError,
    ToolExecutionError,
    ValidationError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .base import (
        LLMBase,
    )
    from .call_settings import (
        CallSettings,
    )
    from .config import (
        ConfigurationManager,
        ProviderConfig,
    )
    from .factory import (
        LLMFactory,
    )
    from .hookspecs import (
        hookimpl,
    )
    from .interface import (
        LLMProviderInterface,
        ProviderCapability,
        ProviderMetadata,
    )
    from .manager import (
        LLMManager,
        get_llm_manager,
        set_llm_manager,
    )
    from .monitoring import (
        get_debug_logger,
        get_metrics_collector,
    )
    from .registry import (
        LLMProviderRegistry,
        get_global_registry,
        register_provider,
        reset_global_registry,
    )
    from .structured import (
        OutputSchema,
    )
    from .tools import (
        FunctionTool,
        tool,
    )
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
        MessageRole,
        TextPart,
        TokenUsage,
        ToolCall,
        ToolSpec,
    )

# Everything but the error tree loads on first use (PEP 562): ``import spoon_llm`` stays almost free, and what a
# program touches (types and pydantic, configuration, the manager and asyncio) is paid for when it touches it.
_LAZY = {
    "LLMBase": ".base",
    "CallSettings": ".call_settings",
    "LLMFactory": ".factory",
    "get_debug_logger": ".monitoring",
    "get_metrics_collector": ".monitoring",
    "ConfigurationManager": ".config",
    "ProviderConfig": ".config",
    "hookimpl": ".hookspecs",
    "LLMProviderInterface": ".interface",
    "ProviderCapability": ".interface",
    "ProviderMetadata": ".interface",
    "LLMProviderRegistry": ".registry",
    "get_global_registry": ".registry",
    "register_provider": ".registry",
    "reset_global_registry": ".registry",
    "Attempt": ".types",
    "CostInfo": ".types",
    "DocumentPart": ".types",
    "EmbeddingResponse": ".types",
    "FinishReason": ".types",
    "FunctionCall": ".types",
    "ImagePart": ".types",
    "LLMResponse": ".types",
    "LLMResponseChunk": ".types",
    "Message": ".types",
    "MessageRole": ".types",
    "TextPart": ".types",
    "TokenUsage": ".types",
    "ToolCall": ".types",
    "ToolSpec": ".types",
    "LLMManager": ".manager",
    "get_llm_manager": ".manager",
    "set_llm_manager": ".manager",
    "OutputSchema": ".structured",
    "FunctionTool": ".tools",
    "tool": ".tools",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "Attempt",
    "AuthenticationError",
    "BudgetExceededError",
    "CallSettings",
    "ConfigurationError",
    "ConfigurationManager",
    "ContentFilterError",
    "CostInfo",
    "DocumentPart",
    "EmbeddingResponse",
    "FinishReason",
    "FunctionCall",
    "FunctionTool",
    "ImagePart",
    "InvalidRequestError",
    "LLMBase",
    "LLMError",
    "LLMFactory",
    "LLMManager",
    "LLMProviderInterface",
    "LLMProviderRegistry",
    "LLMResponse",
    "LLMResponseChunk",
    "MaxTurnsExceededError",
    "Message",
    "MessageRole",
    "ModelNotFoundError",
    "NetworkError",
    "OutputSchema",
    "OutputValidationError",
    "PermissionDeniedError",
    "ProviderCapability",
    "ProviderConfig",
    "ProviderError",
    "ProviderMetadata",
    "ProviderUnavailableError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseParsingError",
    "ResponseTooLargeError",
    "ServiceUnavailableError",
    "StateStoreError",
    "StreamInterruptedError",
    "TextPart",
    "TimeoutError",
    "TokenLimitError",
    "TokenUsage",
    "ToolCall",
    "ToolExecutionError",
    "ToolSpec",
    "ValidationError",
    "__version__",
    "get_debug_logger",
    "get_global_registry",
    "get_llm_manager",
    "get_metrics_collector",
    "hookimpl",
    "register_provider",
    "reset_global_registry",
    "set_llm_manager",
    "tool",
]
