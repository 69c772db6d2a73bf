"""Normalised request and response types shared by every provider.

What goes in: :class:`Message` (with :class:`TextPart`, :class:`ImagePart`, :class:`DocumentPart`),
:class:`ToolCall` and :class:`ToolSpec`. What comes out: :class:`LLMResponse`, :class:`LLMResponseChunk`,
:class:`TokenUsage`, :class:`CostInfo` and :class:`EmbeddingResponse`.

Every public entry point accepts plain dicts as well as these models; :func:`to_messages` does the coercion.

Usage means the same thing for every vendor, as billed:

* ``input_tokens`` counts all input, including cache reads and cache writes; ``cached_input_tokens`` and
  ``cache_write_tokens`` are subsets of it.
* ``output_tokens`` counts all output, including reasoning; ``reasoning_tokens`` is a subset of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Attempt",
    "ChunkKind",
    "ContentPart",
    "CostInfo",
    "DocumentPart",
    "EmbeddingResponse",
    "FinishReason",
    "FunctionCall",
    "ImagePart",
    "LLMResponse",
    "LLMResponseChunk",
    "Message",
    "MessageInput",
    "MessageRole",
    "Role",
    "TextPart",
    "TokenUsage",
    "ToolCall",
    "ToolSpec",
    "to_message",
    "to_messages",
    "to_tool_specs",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]


class MessageRole(str, Enum):
    """The roles as named constants (the older pooled module's ``Message(MessageRole.SYSTEM, "...")``)."""

    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class FinishReason(str, Enum):
    """Normalised reason a generation ended; the vendor's own value is kept beside it."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    ERROR = "error"
    OTHER = "other"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class TextPart(_Model):
    """A piece of text inside a message."""

    type: Literal["text"] = "text"
    text: str
    cache_control: dict[str, Any] | None = None


class ImagePart(_Model):
    """An image, either by URL or inline as base64 data.

    Example::

        ImagePart(url="https://example.com/cat.png")
        ImagePart(data=b64, media_type="image/png")
    """

    type: Literal["image"] = "image"
    url: str | None = None
    data: str | None = Field(default=None, description="base64-encoded bytes")
    media_type: str | None = None
    detail: Literal["auto", "low", "high"] | None = None
    cache_control: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ImagePart:
        if (self.url is None) == (self.data is None):
            raise ValueError("an image part needs exactly one of 'url' or 'data' (base64)")
        return self

    @property
    def data_url(self) -> str:
        """The image as a URL: the URL itself, or a ``data:`` URL built from base64 data."""
        if self.url is not None:
            return self.url
        return f"data:{self.media_type or 'image/png'};base64,{self.data}"


class DocumentPart(_Model):
    """A document (PDF or plain text) by URL or inline as base64 data."""

    type: Literal["document"] = "document"
    url: str | None = None
    data: str | None = Field(default=None, description="base64-encoded bytes")
    media_type: str = "application/pdf"
    filename: str | None = None
    cache_control: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DocumentPart:
        if (self.url is None) == (self.data is None):
            raise ValueError("a document part needs exactly one of 'url' or 'data' (base64)")
        return self


ContentPart = Annotated[TextPart | ImagePart | DocumentPart, Field(discriminator="type")]


class FunctionCall(_Model):
    """The function half of a tool call: a name and its arguments as a JSON string."""

    name: str
    arguments: str = "{}"


class ToolCall(_Model):
    """A tool call requested by the model (OpenAI's shape, used for every vendor)."""

    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall
    #: Vendor data that must travel back with the call on the next turn (e.g. Gemini thought signatures).
    provider_data: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """Shortcut for ``function.name``."""
        return self.function.name

    @property
    def arguments(self) -> dict[str, Any]:
        """The arguments parsed from JSON; an empty or missing string gives ``{}``.

        Raises ``ValueError`` when the model produced arguments that are not a JSON object.
        """
        raw = self.function.arguments
        if not raw or not raw.strip():
            return {}
        parsed = json.loads(raw)
        if not isinstance(parsed, dict):
            raise ValueError(f"tool call arguments are not a JSON object: {raw[:200]!r}")
        return parsed

    def parse(self, model: Any) -> Any:
        """The arguments validated as ``model`` (a pydantic model class or any ``TypeAdapter``-able type).

        Raises :class:`~spoon_llm.errors.OutputValidationError` (carrying the raw arguments and pydantic's errors)
        when they are not JSON or do not fit.
        """
        from .structured._parse import validate_arguments

        return validate_arguments(model, self.function.arguments, tool_name=self.function.name)

    @classmethod
    def create(cls, name: str, arguments: Mapping[str, Any] | str | None = None, id: str | None = None) -> ToolCall:
        """Build a call from a name and a dict (or JSON string) of arguments."""
        if arguments is None:
            args = "{}"
        elif isinstance(arguments, str):
            args = arguments
        else:
            args = json.dumps(arguments, ensure_ascii=False)
        return cls(id=id, function=FunctionCall(name=name, arguments=args))


class ToolSpec(_Model):
    """A function tool the model may call, described by a JSON schema.

    Accepts both the flat form ``{"name", "description", "parameters"}`` and OpenAI's
    ``{"type": "function", "function": {...}}`` (``"type"`` may be left out, as Mistral's clients do).
    """

    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    cache_control: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap_openai_form(cls, data: Any) -> Any:
        if (isinstance(data, Mapping) and isinstance(data.get("function"), Mapping)
                and data.get("type", "function") == "function" and "name" not in data):
            # OpenAI's wrapped form; Mistral's own clients leave "type" out (it defaults to "function").
            return dict(data["function"])
        if isinstance(data, Mapping) and "input_schema" in data and "parameters" not in data:
            # Anthropic's spelling.
            rest = {k: v for k, v in data.items() if k != "input_schema"}
            return {**rest, "parameters": data["input_schema"]}
        return data

    def to_openai(self) -> dict[str, Any]:
        """The tool in OpenAI's ``{"type": "function", "function": ...}`` wire form."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description is not None:
            function["description"] = self.description
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}


class Message(_Model):
    """One turn of a conversation.

    ``content`` is a string or a list of parts. Assistant turns may carry ``tool_calls``; tool turns carry the
    ``tool_call_id`` they answer.

    Example::

        Message(role="user", content="Hello")
        Message(role="user", content=[TextPart(text="What is this?"), ImagePart(url="https://...")])
        Message(role="tool", tool_call_id="call_1", content='{"temp": 21}')
    """

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    #: Reasoning the assistant produced on this turn, sent back where the vendor wants it (e.g. Anthropic thinking).
    reasoning: str | None = None
    #: Vendor data that must travel back with this turn (e.g. Anthropic thinking signatures).
    provider_data: dict[str, Any] | None = None

    def __init__(self, *args: Any, **data: Any) -> None:
        if args:  # Message("user", "Hello"): role, then content, as the older pooled module wrote it
            if len(args) > 2 or "role" in data or (len(args) == 2 and "content" in data):
                raise TypeError("Message takes at most role and content by position, each given once")
            data["role"] = args[0]
            if len(args) == 2:
                data["content"] = args[1]
        super().__init__(**data)

    @model_validator(mode="before")
    @classmethod
    def _accept_loose_content(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            content = data.get("content")
            if isinstance(content, list):
                data = dict(data)
                data["content"] = [_coerce_part(p) for p in content]
        return data

    @model_validator(mode="after")
    def _check_roles(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs 'tool_call_id' (the id of the call it answers)")
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages carry tool_calls, not {self.role!r}")
        return self

    @property
    def text(self) -> str:
        """All text in the message, parts joined without a separator."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @classmethod
    def system(cls, content: str) -> Message:
        """A system message."""
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str | list[ContentPart]) -> Message:
        """A user message."""
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str | None = None, tool_calls: list[ToolCall] | None = None) -> Message:
        """An assistant message, optionally with tool calls."""
        return cls(role="assistant", content=content, tool_calls=tool_calls)

    @classmethod
    def tool(cls, tool_call_id: str, content: str | Any, name: str | None = None) -> Message:
        """A tool result; non-string content is sent as JSON."""
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        return cls(role="tool", tool_call_id=tool_call_id, content=text, name=name)


def _coerce_part(part: Any) -> Any:
    """Accept OpenAI-style parts (``image_url``, ``input_text``) and plain strings as content parts."""
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping):
        return part
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        detail = image.get("detail") if isinstance(image, Mapping) else None
        if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
            header, data = url.split(",", 1)
            out: dict[str, Any] = {"type": "image", "data": data, "media_type": header[5:].split(";")[0]}
        else:
            out = {"type": "image", "url": url}
        if detail:
            out["detail"] = detail
        if part.get("cache_control") is not None:  # keep prompt-cache breakpoints on images
            out["cache_control"] = part["cache_control"]
        return out
    if kind == "input_text":
        return {"type": "text", "text": part.get("text", "")}
    return part


MessageInput = Message | Mapping[str, Any]


def to_message(message: MessageInput) -> Message:
    """Coerce a dict (or a :class:`Message`) into a :class:`Message`."""
    if isinstance(message, Message):
        return message
    return Message.model_validate(message)


def to_messages(messages: str | MessageInput | Iterable[MessageInput]) -> list[Message]:
    """Coerce what a caller passed into a list of messages.

    A bare string becomes one user message; a single dict or message becomes a one-item list.
    """
    if isinstance(messages, str):
        return [Message(role="user", content=messages)]
    if isinstance(messages, (Message, Mapping)):
        return [to_message(messages)]
    return [to_message(m) for m in messages]


def to_tool_specs(tools: Sequence[ToolSpec | Mapping[str, Any]] | None) -> list[ToolSpec]:
    """Coerce tool descriptions (flat, OpenAI or Anthropic form) into :class:`ToolSpec` objects."""
    if not tools:
        return []
    return [t if isinstance(t, ToolSpec) else ToolSpec.model_validate(t) for t in tools]


class TokenUsage(_Model):
    """Tokens billed for one request, with the same meaning for every vendor.

    ``input_tokens`` includes cache reads and writes; ``output_tokens`` includes reasoning.
    ``prompt_tokens`` / ``completion_tokens`` are read-only aliases for code written against OpenAI's names.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    #: The vendor's usage object exactly as received.
    raw: dict[str, Any] | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _fill_total(self) -> TokenUsage:
        if not self.total_tokens and (self.input_tokens or self.output_tokens):
            self.total_tokens = self.input_tokens + self.output_tokens
        return self

    @property
    def prompt_tokens(self) -> int:
        """OpenAI's name for ``input_tokens``."""
        return self.input_tokens

    @property
    def completion_tokens(self) -> int:
        """OpenAI's name for ``output_tokens``."""
        return self.output_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class CostInfo(_Model):
    """What one request cost, and where the prices came from."""

    input_cost: float = 0.0
    output_cost: float = 0.0
    total_cost: float = 0.0
    currency: str = "USD"
    #: Where the price came from, e.g. ``"genai-prices 0.2.3"``, ``"config override"`` or ``"unpriced"``.
    source: str | None = None
    #: True when no price was known: the cost above is not a real zero.
    unpriced: bool = False


@dataclass(slots=True)
class Attempt:
    """One try against one deployment while serving a request.

    A plain slotted dataclass rather than a pydantic model: the manager records one per attempt on the request
    path, where building it costs a fifth as much. Responses still validate and serialise it like a model (it is
    a field type pydantic understands), and :meth:`model_dump` is kept for code written against the model.
    """

    provider: str
    model: str | None = None
    deployment: str | None = None
    key_alias: str | None = None
    error_type: str | None = None
    status_code: int | None = None
    waited: float = 0.0
    latency: float = 0.0
    #: Why this candidate was passed over without a request (it lacks a capability the request needs).
    skipped: str | None = None

    def model_dump(self) -> dict[str, Any]:
        """The attempt as a dict (as for the pydantic types)."""
        # Spelled out rather than ``asdict``, which deep-copies field by field: this runs on every stream's end.
        return {"provider": self.provider, "model": self.model, "deployment": self.deployment,
                "key_alias": self.key_alias, "error_type": self.error_type, "status_code": self.status_code,
                "waited": self.waited, "latency": self.latency, "skipped": self.skipped}


def _cache_hit(metadata: dict[str, Any]) -> bool:
    cache = metadata.get("cache")
    return bool(cache and cache.get("hit"))


class LLMResponse(_Model):
    """A complete answer from a provider, normalised.

    ``finish_reason`` is normalised (see :class:`FinishReason`); ``native_finish_reason`` keeps the vendor's value.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=True, defer_build=True)

    content: str = ""
    provider: str = ""
    model: str = ""
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: TokenUsage | None = None
    cost: CostInfo | None = None
    reasoning: str | None = None
    refusal: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    duration: float = 0.0
    timestamp: float = Field(default_factory=time.time)
    deployment: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    fallback_path: list[str] = Field(default_factory=list)
    #: With a typed ``response_format``: the answer validated into that type (not serialised; re-made from content).
    parsed: Any = Field(default=None, exclude=True)
    #: With ``run_tools=True``: the whole exchange (the caller's messages, every assistant turn and tool result).
    messages: list[Message] | None = None

    @property
    def text(self) -> str:
        """Alias of ``content``."""
        return self.content

    @property
    def cache_hit(self) -> bool:
        """Whether the response cache answered (details in ``metadata["cache"]``)."""
        return _cache_hit(self.metadata)

    def to_message(self) -> Message:
        """The answer as an assistant message, ready to append to the conversation for the next turn."""
        return Message(
            role="assistant",
            content=self.content or None,
            tool_calls=list(self.tool_calls) or None,
            reasoning=self.reasoning,
            provider_data=self.metadata.get("provider_data"),
        )

    def __str__(self) -> str:
        return self.content


ChunkKind = Literal["text", "reasoning", "tool", "final"]


class LLMResponseChunk(_Model):
    """One piece of a streamed answer.

    ``delta`` is what is new in this chunk, ``content`` the text so far; ``str(chunk)`` is the text delta, so
    ``print(chunk, end="")`` prints the stream. The ``final`` chunk carries ``finish_reason``, ``usage`` and the
    complete ``tool_calls`` (and ``parsed`` when a typed ``response_format`` was asked for).
    """

    kind: ChunkKind = "text"
    delta: str = ""
    content: str = ""
    reasoning_delta: str = ""
    provider: str = ""
    model: str = ""
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    #: On the ``final`` chunk the complete calls; on a ``tool`` chunk one delta of call ``tool_call_index``: its id
    #: and name so far, and in ``function.arguments`` only the argument fragment this chunk adds.
    tool_calls: list[ToolCall] = Field(default_factory=list)
    #: For ``tool`` chunks: the index of the call being built.
    tool_call_index: int | None = None
    usage: TokenUsage | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    #: On the ``final`` chunk of a stream with a typed ``response_format``: the answer validated into that type.
    parsed: Any = Field(default=None, exclude=True)

    @property
    def cache_hit(self) -> bool:
        """Whether this chunk replays a cached answer."""
        return _cache_hit(self.metadata)

    def __str__(self) -> str:
        return self.delta

    def __add__(self, other: object) -> str:
        """``chunk + "text"``: the text delta joined (streams were read as text by the older API)."""
        if isinstance(other, str):
            return self.delta + other
        return NotImplemented

    def __radd__(self, other: object) -> str:
        """``full += chunk`` on a string: the text delta appended."""
        if isinstance(other, str):
            return other + self.delta
        return NotImplemented


class EmbeddingResponse(_Model):
    """Vectors for a batch of inputs, in input order."""

    embeddings: list[list[float]]
    provider: str = ""
    model: str = ""
    usage: TokenUsage | None = None
    cost: CostInfo | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    duration: float = 0.0
    deployment: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    fallback_path: list[str] = Field(default_factory=list)

    @property
    def cache_hit(self) -> bool:
        """Whether the response cache answered (details in ``metadata["cache"]``)."""
        return _cache_hit(self.metadata)

    @property
    def dimensions(self) -> int:
        """Length of the vectors (0 when there are none)."""
        return len(self.embeddings[0]) if self.embeddings else 0
