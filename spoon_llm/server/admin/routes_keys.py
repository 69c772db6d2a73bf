"""Admin routes for virtual keys: create (the plain key returned once), list, show, change, revoke, usage.

Keys live in the same store as ``spoon-llm keys`` uses; a change bumps its version, so every replica's
authenticator sees it within ``refresh`` (0.5 s). Every change is audited, a refused one too (result ``failed``,
with the reason).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from pydantic import Field

from ...errors import LLMError, ValidationError
from .api import Admin, AdminBody

if TYPE_CHECKING:
    from ..auth import Principal
    from ..keys import KeyStore
    from .api import AdminContext

__all__ = ["register"]


class _KeyFields(AdminBody):
    role: Literal["user", "admin"] | None = None
    models: list[str] | None = Field(None, description="Models or aliases the key may use ('*' wildcards).")
    budget_limit: float | None = Field(None, ge=0, allow_inf_nan=False, description="USD per budget_period.")
    budget_period: Literal["total", "daily", "monthly"] | None = None
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    max_concurrent: int | None = Field(None, gt=0)
    expires: str | None = Field(None, description="Duration from now (30d, 12h) or ISO date/time.")
    metadata: dict[str, str] | None = Field(None, description="Economics tags, e.g. user, team.")


class CreateKeyBody(_KeyFields):
    """``POST /api/admin/keys``."""

    alias: str = Field(min_length=1, max_length=64)


class UpdateKeyBody(_KeyFields):
    """``PATCH /api/admin/keys/{alias}``: only the fields given change (``null`` clears a limit)."""


def _fields(body: _KeyFields, *, only_set: bool) -> dict[str, Any]:
    from ..key_commands import parse_expiry

    given = body.model_dump(exclude_unset=only_set, exclude={"alias"})
    if not only_set:
        given = {k: v for k, v in given.items() if v is not None}
    if "expires" in given:
        expires = given.pop("expires")
        given["expires_at"] = parse_expiry(expires) if expires else None
    if "metadata" in given and given["metadata"] is None:
        given["metadata"] = {}
    for name in ("role", "budget_period"):
        if name in given and given[name] is None:
            raise ValidationError(f"{name} cannot be cleared; give a value")
    return given


def register(app: FastAPI, context: AdminContext) -> None:
    """Add the key routes."""

    def store() -> KeyStore:
        found: KeyStore | None = context.gateway._store
        if found is None:
            raise ValidationError("this gateway has no virtual keys: set [server] master_key or secret")
        return found

    def refresh() -> None:
        if context.gateway.authenticator is not None:
            context.gateway.authenticator.invalidate()

    @asynccontextmanager
    async def failures_audited(request: Request, principal: Principal, action: str,
                               target: str) -> AsyncIterator[None]:
        # A refused change (unknown key, duplicate alias, invalid field, store down) is an admin action too.
        try:
            yield
        except LLMError as exc:
            await context.audited(request, principal, action, target, ok=False,
                                  message=f"{action.replace('_', ' ')} refused: {exc.message}")
            raise

    @app.post("/api/admin/keys", tags=["keys"], status_code=201, summary="Create a key (shown once)")
    async def create(body: CreateKeyBody, request: Request, principal: Admin) -> dict[str, Any]:
        from ..keys import new_key, server_secret

        settings = context.gateway.settings
        secret = server_secret(settings.secret.get_secret_value() if settings.secret is not None else None,
                               settings.master_key_value)
        async with failures_audited(request, principal, "key_created", body.alias):
            record, plain = new_key(body.alias, secret, **_fields(body, only_set=False))
            await store().create(record)
        await context.audited(request, principal, "key_created", record.alias, after=record.public_dict(),
                              message=f"created virtual key {record.alias!r} ({record.role})")
        return {"key": plain, **record.public_dict()}

    @app.get("/api/admin/keys", tags=["keys"], summary="Every key (never the key itself)")
    async def list_keys(principal: Admin, active: bool = False) -> dict[str, Any]:
        records = await store().list_keys()
        items = [r.public_dict() for r in records if not active or r.status() == "active"]
        return {"keys": items, "total": len(items)}

    @app.get("/api/admin/keys/{alias}", tags=["keys"], summary="One key with its spend this period")
    async def show(alias: str, principal: Admin) -> dict[str, Any]:
        from ..guard import key_spend

        record = await store().require(alias)
        return {**record.public_dict(), "spend": await key_spend(context.gateway.config.config, record)}

    @app.patch("/api/admin/keys/{alias}", tags=["keys"], summary="Change a key's limits, models, role, expiry")
    async def update(alias: str, body: UpdateKeyBody, request: Request, principal: Admin) -> dict[str, Any]:
        async with failures_audited(request, principal, "key_updated", alias):
            changes = _fields(body, only_set=True)
            if not changes:
                raise ValidationError("nothing to change: give at least one field")
            keys = store()
            before = (await keys.require(alias)).public_dict()
            record = await keys.update(alias, **changes)
        refresh()
        after = record.public_dict()
        await context.audited(request, principal, "key_updated", alias,
                              before={k: before[k] for k in changes if k in before},
                              after={k: after[k] for k in changes if k in after},
                              message=f"changed {', '.join(sorted(changes))} of virtual key {alias!r}")
        return after

    @app.delete("/api/admin/keys/{alias}", tags=["keys"], summary="Revoke a key (every replica within 1 s)")
    async def revoke(alias: str, request: Request, principal: Admin) -> dict[str, Any]:
        async with failures_audited(request, principal, "key_revoked", alias):
            keys = store()
            before = await keys.require(alias)
            if before.revoked_at is not None:  # revoking again changes nothing: no write, no second record
                return before.public_dict()
            record = await keys.revoke(alias)
        refresh()
        await context.audited(request, principal, "key_revoked", alias, before={"status": before.status()},
                              after={"status": record.status()}, message=f"revoked virtual key {alias!r}")
        return record.public_dict()

    @app.get("/api/admin/keys/{alias}/usage", tags=["keys"], summary="A key's calls, tokens and spend")
    async def usage(alias: str, principal: Admin) -> dict[str, Any]:
        from ..guard import key_spend

        record = await store().require(alias)
        context.gateway.requests.flush()
        group = context.insight.by_key.get(alias)
        counted = group.view() if group is not None else {
            "calls": 0, "errors": 0, "total_tokens": 0, "input_tokens": 0, "output_tokens": 0,
            "avg_latency_ms": None, "cost_usd": 0.0}
        return {"alias": alias, "status": record.status(), **counted,
                "budget": await key_spend(context.gateway.config.config, record),
                "limits": {"rpm": record.rpm, "tpm": record.tpm, "max_concurrent": record.max_concurrent}}
