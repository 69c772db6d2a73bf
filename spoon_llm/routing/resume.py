"""Whether a candidate may continue an interrupted stream from an assistant prefill.

Resuming sends the text already delivered as a trailing assistant message and asks the model to go on. Some
models continue it (Anthropic's Messages API documents it); many reject it or treat it as a finished turn and
start over, which would show the caller text twice. So prefill is used only where the provider declares it,
or where the provider section says so (``assistant_prefill = true | false``); elsewhere the candidate restarts
the answer cleanly and the caller is told through ``chunk.metadata["restarted"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .deployment import DeploymentState

__all__ = ["PREFILL_PROVIDER_TYPES", "accepts_prefill"]

#: Provider types whose API continues a trailing assistant message.
PREFILL_PROVIDER_TYPES = frozenset({"anthropic"})


def accepts_prefill(deployment: DeploymentState) -> bool:
    """The provider section's ``assistant_prefill`` when set, else what the provider type declares."""
    configured = getattr(deployment.config, "assistant_prefill", None)
    if configured is not None:
        return bool(configured)
    return (deployment.provider_type or deployment.provider_name) in PREFILL_PROVIDER_TYPES
