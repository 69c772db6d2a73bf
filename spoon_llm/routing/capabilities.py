"""What a request needs from a provider (embeddings, tools, vision) and whether a deployment declares it.

Capabilities are declared once, in the registry entry of each provider (``providers/_builtin.py`` for the built-in
ones, ``register(name, spec, capabilities)`` for plugins); the router copies them onto each deployment, and the
attempt loop skips a candidate lacking what the request needs, with the reason in the attempt trace. A provider
registered without capabilities is never skipped: nothing is known about it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..interface import ProviderCapability

if TYPE_CHECKING:
    from ..registry import LLMProviderRegistry
    from .deployment import DeploymentState

__all__ = ["Needs", "declared_capabilities", "missing", "request_needs"]

#: The capabilities one request needs (``None``: nothing beyond what every provider does).
Needs = frozenset[ProviderCapability]

_EMBEDDINGS: Needs = frozenset({ProviderCapability.EMBEDDINGS})
_TOOLS: Needs = frozenset({ProviderCapability.TOOLS})
_VISION: Needs = frozenset({ProviderCapability.VISION})
_IMAGE_TYPES = frozenset({"image", "image_url", "input_image"})


def declared_capabilities(registry: LLMProviderRegistry, provider_type: str) -> frozenset[ProviderCapability] | None:
    """The capabilities registered for ``provider_type``, or ``None`` when none are declared (never skipped)."""
    try:
        declared = registry.get_capabilities(provider_type)
    except Exception:  # an unregistered or unloadable provider fails when it is called, with its own error
        return None
    return frozenset(declared) or None


def request_needs(operation: str, messages: Sequence[Any] | None, tools: Any, kwargs: Mapping[str, Any] | None
                  ) -> Needs | None:
    """What serving ``operation`` needs, from its tools, its messages' image parts and the operation itself."""
    if operation == "embed":
        return _EMBEDDINGS
    needs: Needs | None = _TOOLS if tools or (kwargs and kwargs.get("tools")) else None
    if messages and _has_image(messages):
        needs = _VISION if needs is None else needs | _VISION
    return needs


def _has_image(messages: Sequence[Any]) -> bool:
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else getattr(message, "content", None)
        if content is None or isinstance(content, str):
            if content is None and isinstance(message, Mapping) and message.get("tool_calls") is not None \
                    and not isinstance(message["tool_calls"], list):  # an assistant turn of calls, read here once
                raise ValidationError("a message's tool_calls must be a list of calls")
            continue  # the common case: text only
        if not isinstance(content, (list, tuple)):
            raise ValidationError(f"a message's content must be a string or a list of parts, not "
                                  f"{type(content).__name__}")
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else getattr(part, "type", None)
            if kind in _IMAGE_TYPES:
                return True
    return False


def missing(deployment: DeploymentState, needs: Needs) -> str | None:
    """Why ``deployment`` cannot serve a request needing ``needs`` (``None``: it can, or nothing is declared)."""
    declared = deployment.capabilities
    if declared is None or needs <= declared:
        return None
    lacking = ", ".join(sorted(c.value for c in needs - declared))
    return f"provider {deployment.provider_type!r} does not support {lacking}"
