"""The error raised when no deployment of a request's routes takes traffic: which ones, why, and when they return."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..errors import ProviderUnavailableError

if TYPE_CHECKING:
    from .deployment import DeploymentState

__all__ = ["NO_DEPLOYMENT", "unavailable_error"]

#: ``error_code`` of the error: nothing was sent, every candidate was out of rotation.
NO_DEPLOYMENT = "no_deployment_available"


def _when(at: float, now: float) -> str:
    stamp = datetime.fromtimestamp(at, timezone.utc).strftime("%H:%M:%S UTC")
    return f"back at {stamp} (in {max(0, round(at - now))} s)"


def unavailable_error(deployments: Iterable[DeploymentState], skipped: str = "") -> ProviderUnavailableError:
    """``ProviderUnavailableError`` naming each deployment out of rotation, why, and when it comes back.

    ``provider`` is set when they all belong to one provider; ``retry_after`` is the wait until the first one
    admits a request again (``None`` when none comes back by itself); ``error_code`` is :data:`NO_DEPLOYMENT`.
    ``skipped`` lists candidates that lacked a capability the request needs.
    """
    now = time.time()
    lines: list[str] = []
    providers: set[str] = set()
    soonest: float | None = None
    seen: set[str] = set()
    for state in deployments:
        if state.name in seen:
            continue
        seen.add(state.name)
        providers.add(state.provider_name)
        if state.available:
            continue  # skipped for a capability, reported below
        why, back = state.unavailable_because(now)
        lines.append(f"{state.name}: {why}" + (f", {_when(back, now)}" if back is not None else ""))
        if back is not None and (soonest is None or back < soonest):
            soonest = back
    names = ", ".join(sorted(seen)) or "none"
    message = f"no deployment is available for this request ({names})"
    if lines:
        message += ": " + "; ".join(lines)
    if skipped:
        message += f" (skipped: {skipped})"
    if soonest is not None:
        message += f"; retry after {max(0, round(soonest - now))} s, or call reset_provider(name) once the key is fixed"
    provider = next(iter(providers)) if len(providers) == 1 else None
    return ProviderUnavailableError(message, provider=provider, retryable=True, error_code=NO_DEPLOYMENT,
                                    retry_after=None if soonest is None else max(0.0, soonest - now))
