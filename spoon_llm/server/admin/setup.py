"""Starting and stopping the admin API with the gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .audit import AuditLog, audit_secret
from .insight import RequestInsight
from .runtime import AdminRuntime
from .store import open_admin_store

if TYPE_CHECKING:
    from ..app import GatewayApp

__all__ = ["AdminHandle", "start_admin"]


class AdminHandle:
    """The running admin API: its ASGI app and what :meth:`stop` releases."""

    def __init__(self, asgi: Any, runtime: AdminRuntime, insight: RequestInsight, gateway: GatewayApp) -> None:
        self.asgi = asgi
        self.runtime = runtime
        self.insight = insight
        self._gateway = gateway

    async def stop(self) -> None:
        """Stop syncing, close retired clients and the admin store (once)."""
        gateway = self._gateway
        if self.insight.add in gateway.requests.sinks:
            gateway.requests.sinks.remove(self.insight.add)
        try:
            await self.runtime.stop()
        finally:
            await self.runtime.store.close()


async def start_admin(gateway: GatewayApp) -> AdminHandle:
    """Open the admin store, apply the shared settings, and build the FastAPI app (imported here, lazily)."""
    from ...errors import register_secret
    from .api import AdminContext, AdminGate, build_admin_app
    from .jwt_auth import JWTVerifier

    settings = gateway.settings
    for secret_setting in (settings.audit_secret, settings.jwt.secret if settings.jwt is not None else None):
        if secret_setting is not None:
            register_secret(secret_setting.get_secret_value())  # redacted wherever it could be printed
    verifier = JWTVerifier(settings.jwt) if settings.jwt is not None else None
    secret = audit_secret(settings.audit_secret.get_secret_value() if settings.audit_secret is not None else None,
                          settings.master_key_value,
                          settings.secret.get_secret_value() if settings.secret is not None else None)
    store = open_admin_store(gateway.config.config)
    runtime = AdminRuntime(gateway, store, refresh=settings.admin_refresh)
    try:
        await runtime.start()
    except BaseException:
        await runtime.stop()
        await store.close()
        raise
    insight = RequestInsight()
    gateway.requests.sinks.append(insight.add)
    context = AdminContext(gateway=gateway, runtime=runtime, audit=AuditLog(store, secret), insight=insight,
                           jwt=verifier)
    return AdminHandle(AdminGate(build_admin_app(context), context, settings.max_body_bytes), runtime, insight,
                       gateway)
