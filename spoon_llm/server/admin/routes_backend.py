"""Admin routes for backends: the current default, switching it, health, and pointing a backend elsewhere."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from pydantic import Field

from ...errors import AuthenticationError, LLMError, NetworkError
from ..auth import GatewayAuthError
from .api import Admin, AdminBody
from .runtime import check_endpoint, safe_url

if TYPE_CHECKING:
    from ...manager import LLMManager
    from ...routing.deployment import DeploymentState
    from .api import AdminContext

__all__ = ["register"]

_PREFIX = "/api/admin/backend"


class SwitchBody(AdminBody):
    """``POST /api/admin/backend/switch``."""

    backend: str = Field(min_length=1, description="A provider section or model alias.")
    skip_health_check: bool = Field(False, description="Force the switch and put the backend back into rotation.")


class EndpointBody(AdminBody):
    """``POST /api/admin/backend/{name}/endpoint``."""

    endpoint: str = Field(min_length=1, description="The new base URL, e.g. http://host:8000.")
    health_check: bool = Field(False, description="Apply only when the new endpoint passes a health check.")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _models(manager: LLMManager, name: str) -> list[str]:
    config = manager.config_manager.config
    if name in config.models:
        return list(dict.fromkeys(f"{t.provider}/{t.model}" if t.model else t.provider
                                  for t in config.models[name].targets))
    section = config.providers.get(name)
    if section is None:
        return []
    return list(dict.fromkeys(m for m in (section.model, *section.models) if m))


def _deployment(state: DeploymentState) -> dict[str, Any]:
    return {"deployment": state.name, "provider": state.provider_name, "model": state.model,
            "available": state.available, "healthy": state.healthy, "circuit": state.circuit.snapshot().get("state"),
            "last_health_check": _iso(state.last_health_check) if state.last_health_check else None}


async def _probe(manager: LLMManager, state: DeploymentState) -> dict[str, Any]:
    """One deployment's health check (free: a model list or /health), timed and classified."""
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        instance = await state.provider(manager.registry)
        ok = bool(await instance.health_check())
        error = getattr(instance, "last_health_error", None) if not ok else None
    except Exception as exc:  # a provider that cannot even be built is unhealthy, with the reason
        ok, error = False, exc
    elapsed = (time.perf_counter() - started) * 1000
    state.healthy = ok
    state.last_health_check = time.time()
    if ok:
        reachable: bool | None = True
        auth: bool | None = True
    elif isinstance(error, AuthenticationError):
        reachable, auth = True, False
    elif isinstance(error, NetworkError) or (error is not None and not isinstance(error, LLMError)):
        reachable, auth = False, None
    else:
        reachable, auth = (True if error is not None else None), None
    message = None
    if error is not None:
        text = error.message if isinstance(error, LLMError) else str(error)
        message = f"{type(error).__name__}: {text}"[:300]
    return {**_deployment(state), "reachable": reachable, "auth_valid": auth,
            "response_time_ms": round(elapsed, 3), "error": message}


def _summary(name: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    auth = [c["auth_valid"] for c in checks]
    timings = [c["response_time_ms"] for c in checks if c["healthy"]] or [c["response_time_ms"] for c in checks]
    return {"backend": name, "healthy": any(c["healthy"] for c in checks),
            "reachable": any(c["reachable"] for c in checks),
            "auth_valid": False if False in auth else (True if auth and all(auth) else None),
            "response_time_ms": min(timings) if timings else None,
            "error": next((c["error"] for c in checks if c["error"]), None), "deployments": checks}


async def health_of(manager: LLMManager, name: str) -> dict[str, Any]:
    """The health of one backend (every deployment checked at once)."""
    states = [state for state, _ in manager.router.resolve(name, None).targets]
    checks = list(await asyncio.gather(*(_probe(manager, s) for s in dict.fromkeys(states))))
    return _summary(name, checks)


def register(app: FastAPI, context: AdminContext) -> None:
    """Add the backend routes."""

    def manager() -> LLMManager:
        found = context.gateway.manager
        assert found is not None
        return found

    @app.get(f"{_PREFIX}/current", tags=["backend"], summary="The active default backend")
    async def current(principal: Admin) -> dict[str, Any]:
        mgr = manager()
        status = mgr.get_status()
        name = status["default"]
        states: list[DeploymentState] = []
        if name is not None:
            states = list(dict.fromkeys(s for s, _ in mgr.router.resolve(name, None).targets))
        healthy = any(s.available for s in states)
        since = context.runtime.backend_since()
        return {"backend": name, "models": _models(mgr, name) if name else [],
                "health": "healthy" if healthy else "unhealthy", "healthy": healthy,
                "since": _iso(since), "since_ts": since, "deployments": [_deployment(s) for s in states]}

    @app.post(f"{_PREFIX}/switch", tags=["backend"], summary="Switch the default backend")
    async def switch(body: SwitchBody, request: Request, principal: Admin) -> dict[str, Any]:
        mgr = manager()
        before = mgr.get_status()["default"]
        result = await mgr.switch_backend(body.backend, skip_health_check=body.skip_health_check)
        if result["success"]:
            if body.skip_health_check:
                context.runtime.reset_backend(body.backend)
                result["message"] += " (health check skipped; the backend is back in rotation)"
            now = time.time()
            await context.runtime.publish(lambda doc: {**doc, "backend": {
                "name": body.backend, "since": now, "forced": body.skip_health_check}})
        await context.audited(request, principal, "backend_switched", body.backend, before={"backend": before},
                              after={"backend": body.backend if result["success"] else before,
                                     "skip_health_check": body.skip_health_check},
                              ok=bool(result["success"]), message=str(result["message"]))
        return {"success": bool(result["success"]), "backend": str(result["backend"]),
                "message": str(result["message"])}

    @app.get(f"{_PREFIX}/health", tags=["backend"], summary="Health of every backend (no tokens spent)")
    async def health_all(principal: Admin) -> dict[str, Any]:
        mgr = manager()
        names = mgr.router.providers()
        results = await asyncio.gather(*(health_of(mgr, n) for n in names))
        return dict(zip(names, results, strict=True))

    @app.get(f"{_PREFIX}/health/{{name}}", tags=["backend"], summary="Health of one backend (no tokens spent)")
    async def health_one(name: str, principal: Admin) -> dict[str, Any]:
        mgr = manager()
        if name not in mgr.router.providers() and name not in mgr.config_manager.config.models:
            raise GatewayAuthError(f"no backend named {name!r}; configured: {', '.join(mgr.router.providers())}",
                                   status=404, code="backend_not_found")
        return await health_of(mgr, name)

    @app.post(f"{_PREFIX}/{{name}}/endpoint", tags=["backend"], summary="Point a backend at a new endpoint")
    async def endpoint(name: str, body: EndpointBody, request: Request,
                       principal: Admin) -> dict[str, Any]:
        mgr = manager()
        section = mgr.config_manager.config.providers.get(name)
        if section is None or name not in mgr.router.providers():
            raise GatewayAuthError(f"no provider section named {name!r}; configured: "
                                   f"{', '.join(mgr.router.providers())}", status=404, code="backend_not_found")
        url = check_endpoint(body.endpoint)
        before = safe_url(section.base_url)  # the configured URL may carry credentials: never shown or audited
        if body.health_check and not await _endpoint_healthy(mgr, name, url):
            message = f"{url} failed its health check; {name!r} still uses {before!r}"
            await context.audited(request, principal, "backend_endpoint_changed", name, before={"endpoint": before},
                                  after={"endpoint": url}, ok=False, message=message)
            return {"success": False, "backend": name, "endpoint": before, "message": message}
        await context.runtime.publish(lambda doc: {**doc, "endpoints": {**(doc.get("endpoints") or {}),
                                                                         name: url}})
        message = f"{name!r} now uses {url} for new requests (requests in flight finish on {before!r})"
        await context.audited(request, principal, "backend_endpoint_changed", name, before={"endpoint": before},
                              after={"endpoint": url}, message=message)
        return {"success": True, "backend": name, "endpoint": url, "message": message}


async def _endpoint_healthy(manager: LLMManager, name: str, url: str) -> bool:
    """Build a throw-away provider for ``url`` and run its health check (closed on every path)."""
    state = manager.router.provider_deployments(name)[0]
    instance = manager.registry.get_provider_class(state.provider_type)()
    if not getattr(instance, "provider_name", ""):
        instance.provider_name = state.provider_type
    try:
        await instance.initialize(state.config.model_copy(update={"base_url": url}))
        return bool(await instance.health_check())
    except Exception:  # an endpoint that cannot even be set up is not healthy
        return False
    finally:
        await instance.cleanup()
