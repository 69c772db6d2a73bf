"""Whether a candidate may continue an interrupted stream from an assistant prefill.

Resuming sends the text already delivered as a trailing assistant message and asks the model to go on. Some
models continue it (Anthropic's Messages API documents it); many reject it or treat it as a finished turn and
start over, which would show the caller text twice. So prefill is used only where it is declared, per model:

1. the provider section's ``no_prefill_models``, then ``prefill_models`` (model names or ``fnmatch`` patterns
   such as ``"claude-3-*"``; a name in both lists is a configuration error, and where patterns overlap the safe
   side, ``no_prefill_models``, wins);
2. else the section's ``assistant_prefill = true | false`` (every model of the section);
3. else what the provider type declares (:data:`PREFILL_PROVIDER_TYPES`).

Elsewhere the candidate restarts the answer cleanly and the caller is told through ``chunk.metadata["restarted"]``;
a candidate that rejects the prefill anyway (a 400) is asked again without one.

Lists on the section rather than a table per model: a section names its models as plain strings already
(``model``, ``models``, key models), one pattern covers a family, and both directions are needed because the
default may be either (Anthropic's models take a prefill unless listed; an OpenAI-style endpoint's do not unless
listed).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .deployment import DeploymentState

__all__ = ["PREFILL_PROVIDER_TYPES", "accepts_prefill", "matches_model"]

#: Provider types whose API continues a trailing assistant message (Claude's Messages API, also on Vertex AI).
PREFILL_PROVIDER_TYPES = frozenset({"anthropic", "vertex_anthropic"})


def matches_model(model: str, patterns: list[str] | None) -> bool:
    """True when ``model`` is one of ``patterns`` (exact names or ``fnmatch`` patterns, case-sensitive)."""
    return bool(patterns) and any(model == p or fnmatchcase(model, p) for p in patterns or ())


def accepts_prefill(deployment: DeploymentState, model: str | None = None) -> bool:
    """Whether ``model`` (default: the deployment's) on ``deployment`` continues an assistant prefill.

    The per-model lists of the provider section first, then its ``assistant_prefill``, then the provider type.
    """
    config = deployment.config
    name = model or deployment.model
    if name:
        if matches_model(name, getattr(config, "no_prefill_models", None)):
            return False
        if matches_model(name, getattr(config, "prefill_models", None)):
            return True
    configured = getattr(config, "assistant_prefill", None)
    if configured is not None:
        return bool(configured)
    return (deployment.provider_type or deployment.provider_name) in PREFILL_PROVIDER_TYPES
