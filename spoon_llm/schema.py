"""Message types under the module name that code written against the older ``spoon_ai`` API imports."""

from .types import (
    DocumentPart,
    FunctionCall,
    ImagePart,
    LLMResponse,
    LLMResponseChunk,
    Message,
    MessageRole,
    Role,
    TextPart,
    ToolCall,
    ToolSpec,
)

#: The older API's name for a tool description.
Function = FunctionCall

__all__ = [
    "DocumentPart",
    "Function",
    "FunctionCall",
    "ImagePart",
    "LLMResponse",
    "LLMResponseChunk",
    "Message",
    "MessageRole",
    "Role",
    "TextPart",
    "ToolCall",
    "ToolSpec",
]
