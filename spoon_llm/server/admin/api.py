"""The admin API under ``/api/admin``: a FastAPI app the gateway hands every ``/api/admin/...`` request to.

FastAPI is imported only when the gateway starts with the admin API on; the inference routes never pass through
it. Every route needs the admin role: the master key, an admin virtual key, or a JWT whose role claim is an
admin role (``[server.jwt]``). Refusals are JSON ``{"error": {"message", "type", "code"}}``: 401 for a missing,
wrong, expired or badly signed credential, 403 for a valid one without the admin role, 429 once an address has
failed too often (keys and JWTs alike), 413 for a body over ``[server] max_body_bytes``. The OpenAPI schema is at
``/api/admin/openapi.json`` and a page listing every route at ``/api/admin/docs`` (self-contained: FastAPI's
Swagger UI would load its scripts from a CDN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import LLMError, ValidationError
from ..auth import GatewayAuthError, Principal, presented_key
from .audit import AuditLog
from .insight import RequestInsight
from .jwt_auth import JWTVerifier, looks_like_jwt
from .runtime import AdminRuntime

if TYPE_CHECKING:
    from ..app import GatewayApp

__all__ = ["Admin", "AdminBody", "AdminContext", "AdminGate", "build_admin_app", "check_text", "error_response",
           "require_admin"]

PREFIX = "/api/admin"
#: Where :class:`AdminGate` leaves the caller it signed in, so the routes do not sign it in twice.
_PRINCIPAL = "spoon_llm.admin.principal"
#: Methods the gate passes on without signing in (the docs and the schema are open to all); a request with any
#: other method is signed in before a byte of its body is read.
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


def check_text(value: Any) -> Any:
    r"""``value`` unchanged when every string in it (list items, mapping keys and values too) is valid UTF-8.

    JSON may carry a lone UTF-16 surrogate (``"\ud800"``); such a string cannot be stored, audited or logged,
    so it is refused before anything is.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (it holds a lone surrogate such as \\ud800)") from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(key)
            check_text(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_text(item)
    return value


class AdminBody(BaseModel):
    """The base of every admin request body: no unknown fields, and only text that can be stored."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return check_text(value)


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
        known = request.scope.get(_PRINCIPAL)
        if isinstance(known, Principal):  # signed in by the gate already
            return known
        return await self.sign_in(request.scope["headers"], request.client.host if request.client else None)

    async def sign_in(self, headers: Sequence[tuple[bytes, bytes]], client: str | None) -> Principal:
        """The caller of a request with these headers from this address, with the admin role, or 401/403/429."""
        authenticator = self.gateway.authenticator
        assert authenticator is not None
        try:
            token = presented_key(headers)
        except GatewayAuthError:
            token = None  # authenticate() refuses the malformed header and counts the failure
        if self.jwt is not None and token is not None and looks_like_jwt(token):
            # A failed JWT counts toward the same per-address limit as a wrong key, or tokens could be guessed
            # without end.
            address = client or "unknown"
            authenticator.check_throttle(address)
            try:
                principal = self.jwt.verify(token)
            except GatewayAuthError:
                authenticator.record_failure(address)
                raise
        else:
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
             404: "not_found_error", 409: "conflict_error", 413: "invalid_request_error", 429: "rate_limit_error"}
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


def _too_large(limit: int) -> GatewayAuthError:
    return GatewayAuthError(f"the request body exceeds {limit} bytes", status=413, code="request_too_large")


class AdminGate:
    """The admin API's front door: the body-size limit, and sign-in before a body is read.

    FastAPI reads a route's body before it resolves the route's dependencies (the sign-in), so without this gate
    anyone could make the gateway buffer a body of any size. A ``Content-Length`` over ``limit`` is answered 413
    at once; a request that may carry a body (any method but GET, HEAD, OPTIONS) is signed in first; and the body
    is counted as it arrives, 413 as soon as it passes ``limit`` (a chunked body names no length).
    """

    def __init__(self, app: ASGIApp, context: AdminContext, limit: int) -> None:
        self.app = app
        self.context = context
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (or pass a non-HTTP scope on)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        try:
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if not value.isdigit():
                        raise ValidationError("invalid Content-Length")
                    if int(value) > limit:  # answered before a byte of the body is read
                        raise _too_large(limit)
            if scope["method"] not in _READ_ONLY:
                client = scope.get("client")
                scope[_PRINCIPAL] = await self.context.sign_in(scope["headers"], client[0] if client else None)
        except LLMError as exc:
            await _failure(exc)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # FastAPI re-raises an HTTPException met reading a body: http_error answers
                    raise StarletteHTTPException(413, _too_large(limit).message)
            return message

        await self.app(scope, counted, send)


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
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
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
