"""The admin API under ``/api/admin``: a FastAPI app the gateway hands every ``/api/admin/...`` request to.

FastAPI is imported only when the gateway starts with the admin API on; the inference routes never pass through
it. Every route needs the admin role: the master key, an admin virtual key, or a JWT whose role claim is an
admin role (``[server.jwt]``). Refusals are JSON ``{"error": {"message", "type", "code"}}``: 401 for a missing,
wrong, expired or badly signed credential, 403 for a valid one without the admin role. The OpenAPI schema is at
``/api/admin/openapi.json`` and a page listing every route at ``/api/admin/docs`` (self-contained: FastAPI's
Swagger UI would load its scripts from a CDN).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...errors import LLMError, ValidationError
from ..auth import GatewayAuthError, Principal, presented_key
from .audit import AuditLog
from .insight import RequestInsight
from .jwt_auth import JWTVerifier, looks_like_jwt
from .runtime import AdminRuntime

if TYPE_CHECKING:
    from ..app import GatewayApp

__all__ = ["Admin", "AdminContext", "build_admin_app", "error_response", "require_admin"]

PREFIX = "/api/admin"


@dataclass
class AdminContext:
    """What the routes work with: the gateway, the shared runtime, the audit log, JWTs and request metrics."""

    gateway: GatewayApp
    runtime: AdminRuntime
    audit: AuditLog
    insight: RequestInsight
    jwt: JWTVerifier | None = None

    async def principal(self, request: Request) -> Principal:
        """The caller, with the admin role, or :class:`GatewayAuthError` (401 or 403)."""
        headers = request.scope["headers"]
        client = request.client.host if request.client else None
        token = presented_key(headers)
        if self.jwt is not None and token is not None and looks_like_jwt(token):
            principal = self.jwt.verify(token)
        else:
            authenticator = self.gateway.authenticator
            assert authenticator is not None
            principal = await authenticator.authenticate(headers, client)
        if principal.role != "admin":
            raise GatewayAuthError(f"{principal.alias!r} has the {principal.role!r} role; the admin API needs the "
                                   "admin role", status=403, code="admin_only")
        return principal

    async def audited(self, request: Request, principal: Principal, action: str, target: str | None, *,
                      before: Any = None, after: Any = None, ok: bool = True, message: str = "") -> None:
        """Record one admin action in the audit log (and its structured log record)."""
        client = request.client.host if request.client else None
        await self.audit.record(actor=principal.alias, source=client, action=action, target=target, before=before,
                                after=after, result="ok" if ok else "failed", message=message)


async def require_admin(request: Request) -> Principal:
    """The dependency of every admin route: the caller, with the admin role."""
    context: AdminContext = request.app.state.admin
    return await context.principal(request)


#: A route parameter that requires the admin role and names the caller.
Admin = Annotated[Principal, Depends(require_admin)]


def error_response(status: int, message: str, code: str, kind: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The admin API's error body."""
    kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 409: "conflict_error", 429: "rate_limit_error"}
    return JSONResponse({"error": {"message": message, "type": kind or kinds.get(status, "api_error"),
                                   "code": code}}, status_code=status, headers=headers)


def _failure(exc: LLMError) -> JSONResponse:
    from ..keys import KeyConflictError, KeyNotFoundError, KeyStoreUnavailableError

    if isinstance(exc, GatewayAuthError):
        headers = {"retry-after": str(max(1, round(exc.retry_after)))} if exc.retry_after else None
        if exc.status == 401:
            headers = {**(headers or {}), "www-authenticate": "Bearer"}
        return error_response(exc.status, exc.message, exc.code, headers=headers)
    if isinstance(exc, KeyNotFoundError):
        return error_response(404, exc.message, "key_not_found")
    if isinstance(exc, KeyConflictError):
        return error_response(409, exc.message, "key_exists")
    if isinstance(exc, KeyStoreUnavailableError):
        return error_response(503, exc.message, "store_unavailable", "api_error", {"retry-after": "1"})
    if isinstance(exc, ValidationError):
        return error_response(400, exc.message, "invalid_request")
    return error_response(500, exc.message, "admin_error", "api_error")


def build_admin_app(context: AdminContext) -> FastAPI:
    """The FastAPI app with every admin route (paths include the ``/api/admin`` prefix)."""
    from . import routes_backend, routes_keys, routes_usage

    # No Swagger UI: FastAPI's page loads its scripts from a CDN, which an offline or locked-down host cannot
    # reach and a CSP-minded operator would not want; /docs is a self-contained page of the schema instead.
    app = FastAPI(title="spoon-llm admin API", version="1", openapi_url=f"{PREFIX}/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="Backend switching, costs and budgets, metrics, health, endpoints, virtual keys and "
                              "the audit log of a spoon-llm gateway. Every route needs the admin role.")
    app.state.admin = context

    @app.exception_handler(LLMError)
    async def llm_error(request: Request, exc: LLMError) -> JSONResponse:
        return _failure(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = (f"no admin route {request.method} {request.url.path}; /api/admin/docs lists them"
                   if exc.status_code in (404, 405) else str(exc.detail))
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(exc.status_code, message, codes.get(exc.status_code, "http_error"))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
                             for e in exc.errors())
        return error_response(400, f"invalid request: {problems}", "invalid_request")

    routes_backend.register(app, context)
    routes_usage.register(app, context)
    routes_keys.register(app, context)

    @app.get(f"{PREFIX}/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_docs_page(app.openapi()), headers={
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'"})

    return app


def _docs_page(schema: dict[str, Any]) -> str:
    """Every route of the schema (method, path, summary, parameters) as one page with nothing to load."""
    rows = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            params = ", ".join(p.get("name", "") for p in operation.get("parameters", ()))
            body = " (JSON body)" if "requestBody" in operation else ""
            rows.append(f"<tr><td><code>{escape(method.upper())}</code></td><td><code>{escape(path)}</code></td>"
                        f"<td>{escape(operation.get('summary', ''))}</td><td>{escape(params)}{body}</td></tr>")
    info = schema.get("info", {})
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(info.get('title', ''))}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:.2em .8em;border-bottom:1px solid #ddd}"
            "</style></head><body>"
            f"<h1>{escape(info.get('title', ''))}</h1><p>{escape(info.get('description', ''))}</p>"
            f"<p>The OpenAPI schema: <a href='{PREFIX}/openapi.json'>{PREFIX}/openapi.json</a> (load it into any "
            "OpenAPI viewer or client generator).</p>"
            "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Parameters</th></tr>"
            + "".join(rows) + "</table></body></html>")
