"""OpenAI-compatible dialects and per-model rules, and the finish-reason table both directions share.

:class:`WireDialect` says how one vendor differs from OpenAI on the wire (built once per provider);
:func:`model_rules` decides once per model name where ``max_tokens`` goes and which sampling settings it takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ...types import FinishReason

__all__ = [
    "LEGACY_COMPLETION_MODELS",
    "ModelRules",
    "WireDialect",
    "model_rules",
    "normalize_finish_reason",
    "supports_legacy_completions",
]


_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_STOP = FinishReason.STOP.value
_LENGTH = FinishReason.LENGTH.value
_TOOL_CALLS = FinishReason.TOOL_CALLS.value
_FILTER = FinishReason.CONTENT_FILTER.value
_ERROR = FinishReason.ERROR.value
_OTHER = FinishReason.OTHER.value

#: Vendor finish reasons -> ours. OpenAI's own values plus what compatible servers send.
_FINISH = {
    "stop": _STOP,
    "length": _LENGTH,
    "tool_calls": _TOOL_CALLS,
    "function_call": _TOOL_CALLS,
    "content_filter": _FILTER,
    "end_turn": _STOP,
    "stop_sequence": _STOP,
    "eos": _STOP,
    "max_tokens": _LENGTH,
    "model_length": _LENGTH,
    "tool_use": _TOOL_CALLS,
    "error": _ERROR,
    "insufficient_system_resource": _ERROR,
}

#: Models served by the legacy ``/v1/completions`` endpoint (prefix match).
LEGACY_COMPLETION_MODELS = ("gpt-3.5-turbo-instruct", "davinci-002", "babbage-002", "text-davinci", "text-curie",
                            "text-babbage", "text-ada")

# Keys of an assistant turn that only our schema knows; everything else in a dict message is already wire format.
_RESERVED_MESSAGE_KEYS = ("reasoning", "provider_data")
# provider_data entries that travel back on the next turn (OpenRouter keeps reasoning continuity with these).
_ECHO_PROVIDER_DATA = ("reasoning_details",)


def normalize_finish_reason(native: str | None) -> str | None:
    """Our :class:`FinishReason` value for a vendor finish reason (``None`` stays ``None``)."""
    if native is None:
        return None
    return _FINISH.get(native, _OTHER)


# -- dialects and model rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireDialect:
    """How one OpenAI-compatible vendor differs from OpenAI on the wire; built once per provider."""

    #: Our provider name, stamped on responses.
    provider: str
    #: Field of an assistant turn that carries its reasoning back (DeepSeek ``reasoning_content``, OpenRouter
    #: ``reasoning``); ``None`` drops it.
    reasoning_field: str | None = None
    #: Send ``max_tokens`` as ``max_completion_tokens`` to reasoning models (OpenAI's rule).
    completion_tokens_for_reasoning: bool = True
    #: Ask streams for a final usage chunk (``stream_options.include_usage``).
    stream_usage: bool = True
    #: Default ``encoding_format`` for embeddings (``None`` leaves it to the server; base64 is smaller and faster).
    embedding_encoding: str | None = None
    #: ``response_format`` of type ``json_schema`` is understood; without it a typed request is sent as
    #: ``json_object`` with the schema in a system instruction (DeepSeek).
    json_schema: bool = True


@dataclass(frozen=True)
class ModelRules:
    """Parameter rules of one model, decided once per model name."""

    reasoning: bool = False
    #: Where ``max_tokens`` goes on the wire.
    max_tokens_param: str = "max_tokens"
    #: Reasoning models accept only the default temperature/top_p (1); other values are dropped, not sent.
    fixed_sampling: bool = False
    #: o1-mini / o1-preview refuse system and developer turns: send them as this role instead.
    system_role: str | None = None


@lru_cache(maxsize=256)
def model_rules(model: str, completion_tokens_for_reasoning: bool = True) -> ModelRules:
    """The parameter rules for ``model`` (an OpenRouter-style ``vendor/model`` id is judged by its last part)."""
    tail = model.rsplit("/", 1)[-1].lower()
    reasoning = tail.startswith(("o1", "o3", "o4")) or (tail.startswith("gpt-5") and "chat" not in tail)
    if not reasoning:
        return ModelRules()
    system_role = "user" if tail.startswith(("o1-mini", "o1-preview")) else None
    param = "max_completion_tokens" if completion_tokens_for_reasoning else "max_tokens"
    return ModelRules(reasoning=True, max_tokens_param=param, fixed_sampling=True, system_role=system_role)


def supports_legacy_completions(model: str) -> bool:
    """True for the OpenAI models that the legacy ``/completions`` endpoint serves."""
    return model.rsplit("/", 1)[-1].lower().startswith(LEGACY_COMPLETION_MODELS)


# -- messages -----------------------------------------------------------------------------------------------

