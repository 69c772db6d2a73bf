"""Admin routes for money and usage: costs, budgets (with their 75/90/100% alerts), metrics and the audit log."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Query, Request
from pydantic import Field

from ...costs.tracker import LEDGER_TABLE, CostTracker, UsageRecord
from ...errors import ValidationError
from .api import Admin, AdminBody
from .runtime import LEVELS, level_of

if TYPE_CHECKING:
    from ...costs.budgets import BudgetManager
    from .api import AdminContext

__all__ = ["register"]

GLOBAL = "global"


class BudgetBody(AdminBody):
    """``POST /api/admin/budget``: the global budget, or one key's, team's, user's or tag value's."""

    budget_limit: float = Field(ge=0, allow_inf_nan=False, description="USD per period.")
    period: Literal["total", "daily", "monthly"] | None = Field(
        None, description="Budget period (default: the current one, else [budget] period).")
    key: str | None = Field(None, description="A virtual key alias: that key's budget.")
    team: str | None = Field(None, description="Requests tagged team=<value> (virtual keys' metadata).")
    user: str | None = Field(None, description="Requests tagged user=<value>.")
    tag: str | None = Field(None, description="Requests tagged <name>:<value>.")


def _moment(value: str | None, name: str) -> float | None:
    """A Unix time or an ISO 8601 date/time (UTC unless it says otherwise)."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):  # nan compares false with every time: it would silently match nothing
            raise ValidationError(f"{name}={value!r} is not a finite Unix time")
        return number
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{name}={value!r} is neither a Unix time nor an ISO date (2026-01-31T12:00:00Z)"
                              ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _period_start(period: str, now: float) -> float | None:
    moment = datetime.fromtimestamp(now, timezone.utc)
    if period == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    if period == "month":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    return None


async def _tracker(context: AdminContext) -> CostTracker:
    """The usage every replica recorded (the shared ledger) when there is one, else this process's tracker."""
    from ...middleware.cost import CostMiddleware

    manager = context.gateway.manager
    assert manager is not None
    for middleware in manager.middleware:
        if isinstance(middleware, CostMiddleware) and middleware.tracker is not None:
            local = middleware.tracker
            ledger = local.ledger
            if ledger is None or not ledger.shared:
                return local
            merged = CostTracker(None, max_records=10_000_000)
            for row in await ledger.records(LEDGER_TABLE):
                merged.add(UsageRecord.from_dict(row).to_row())
            return merged
    return CostTracker(None)


def _one_target(body: BudgetBody) -> None:
    """Refuse a body naming more than one budget (a key's budget and a team's are different things)."""
    if sum(v is not None for v in (body.key, body.team, body.user, body.tag)) > 1:
        raise ValidationError("give at most one of key, team, user and tag")


def _target(body: BudgetBody) -> tuple[str, dict[str, Any]]:
    """The budget's name and its shared specification (scope, match, value)."""
    _one_target(body)
    chosen = [(n, v) for n, v in (("team", body.team), ("user", body.user), ("tag", body.tag)) if v is not None]
    if not chosen:
        return GLOBAL, {"scope": "global", "match": None, "value": None}
    name, value = chosen[0]
    if name == "tag":
        tag, sep, value = value.partition(":")
        if not sep or not tag or not value:
            raise ValidationError(f"tag must read '<name>:<value>', got {body.tag!r}")
        name = tag
    return f"tag:{name}={value}", {"scope": "tag", "match": name, "value": value}


def _view(name: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    percent = snapshot.get("percent")
    return {"budget": name, "budget_limit": snapshot["limit"], "period": snapshot["period"],
            "spent": snapshot["spent"], "reserved": snapshot["reserved"], "remaining": snapshot["remaining"],
            "budget_used_percent": percent, "level": level_of(percent)}


async def _budget_state(context: AdminContext) -> dict[str, Any]:
    budgets: BudgetManager | None = context.runtime.budget_manager()
    snapshots = await budgets.snapshot() if budgets is not None else {}
    main = snapshots.get(GLOBAL)
    percent = main.get("percent") if main else None
    out: dict[str, Any] = {
        "budget_limit": main["limit"] if main else None, "period": main["period"] if main else None,
        "spent": main["spent"] if main else None, "reserved": main["reserved"] if main else None,
        "remaining": main["remaining"] if main else None, "budget_used_percent": percent,
        "level": level_of(percent) if main else None,
        "thresholds": [{"percent": round(t * 100), "level": name, "reached": percent is not None and
                        percent >= t * 100} for t, name in LEVELS],
        "alerts": list(context.runtime.alerts),
        "budgets": {name: _view(name, s) for name, s in snapshots.items() if name != GLOBAL},
        "keys": {},
    }
    store = context.gateway._store
    if store is not None:
        from ..guard import key_spend

        config = context.gateway.config.config
        for record in await store.list_keys():
            if record.budget_limit is not None and record.revoked_at is None:
                spend = await key_spend(config, record)
                out["keys"][record.alias] = _view(record.alias, spend) if spend else {
                    "budget": record.alias, "budget_limit": record.budget_limit, "period": record.budget_period}
    return out


def register(app: FastAPI, context: AdminContext) -> None:
    """Add the costs, budget, metrics and audit routes."""

    @app.get("/api/admin/costs", tags=["costs"], summary="Spend per backend against the budget")
    async def costs(principal: Admin,
                    period: Literal["total", "day", "month"] = Query("total", description="Spend since when."),
                    since: str | None = Query(None, description="Unix time or ISO date (overrides period)."),
                    until: str | None = Query(None, description="Unix time or ISO date."),
                    model: str | None = Query(None, description="Only this model."),
                    key: str | None = Query(None, description="Only requests made with this virtual key alias "
                                                              "(this replica's count since it started; no other "
                                                              "filter applies to it)."),
                    team: str | None = Query(None, description="Only requests tagged team=<value>."),
                    user: str | None = Query(None, description="Only requests tagged user=<value>."),
                    by: Literal["backend", "model", "key", "team", "user"] = Query(
                        "backend", description="Also break the total down by this dimension.")) -> dict[str, Any]:
        if key is not None:
            # A key's spend is this replica's running count, with neither times nor models nor tags to filter on:
            # refuse the filters rather than answer a total they did not narrow.
            ignored = [name for name, value in (("since", since), ("until", until), ("model", model),
                                                ("team", team), ("user", user)) if value]
            if period != "total":
                ignored.append(f"period={period}")
            if by in ("model", "team", "user"):
                ignored.append(f"by={by}")
            if ignored:
                raise ValidationError(f"key cannot be combined with {', '.join(ignored)}: a key's spend is this "
                                      "replica's count since it started; leave them out, or drop key")
        now = time.time()
        start = _moment(since, "since")
        if start is None:
            start = _period_start(period, now)
        end = _moment(until, "until")
        tags = {k: v for k, v in (("team", team), ("user", user)) if v is not None}
        out: dict[str, Any] = {}
        if key is not None:
            context.gateway.requests.flush()
            group = context.insight.by_key.get(key)
            total = group.cost if group is not None else 0.0
        else:
            tracker = await _tracker(context)
            for provider in sorted({r.provider for r in tracker.records} | set(context.gateway.config.config.providers)
                                   ):
                if provider in ("total", "budget_limit", "remaining", "budget_used_percent"):
                    continue  # a provider section named like a summary field would shadow it
                out[provider] = float(tracker.get_total_cost(provider=provider, model=model, tags=tags or None,
                                                             since=start, until=end))
            total = float(tracker.get_total_cost(model=model, tags=tags or None, since=start, until=end))
            if by in ("model", "team", "user"):
                breakdown: dict[str, float] = {}
                for record in tracker.records:
                    if ((start is None or record.ts >= start) and (end is None or record.ts < end)
                            and (model is None or record.model == model)
                            and all(record.tags.get(k) == v for k, v in tags.items())):
                        label = record.model if by == "model" else record.tags.get(by)
                        if label:
                            breakdown[label] = breakdown.get(label, 0.0) + record.cost
                out[f"by_{by}"] = breakdown
        if by == "key":
            context.gateway.requests.flush()
            out["by_key"] = {alias: g.cost for alias, g in sorted(context.insight.by_key.items())}
        state = await _budget_state(context)
        out.update({"total": total, "budget_limit": state["budget_limit"], "remaining": state["remaining"],
                    "budget_used_percent": state["budget_used_percent"] or 0.0})
        return out

    @app.get("/api/admin/costs/history", tags=["costs"], summary="Spend, requests and tokens per time bucket")
    async def history(principal: Admin,
                      bucket: Literal["minute", "hour", "day", "month"] = Query("hour"),
                      since: str | None = Query(None, description="Unix time or ISO date."),
                      until: str | None = Query(None, description="Unix time or ISO date."),
                      by: Literal["provider", "model"] | None = Query(
                          None, description="One row per bucket and backend (or model).")) -> dict[str, Any]:
        tracker = await _tracker(context)
        rows = tracker.history(bucket, since=_moment(since, "since"), until=_moment(until, "until"), by=by)
        return {"bucket": bucket, "items": rows}

    @app.get("/api/admin/budget", tags=["costs"], summary="Budgets, spend and the 75/90/100% alerts")
    async def budget(principal: Admin) -> dict[str, Any]:
        return await _budget_state(context)

    @app.post("/api/admin/budget", tags=["costs"], summary="Set the global budget, or a key's, team's or user's")
    async def set_budget(body: BudgetBody, request: Request, principal: Admin) -> dict[str, Any]:
        _one_target(body)
        if body.key is not None:
            return await _key_budget(context, body, request, principal)
        name, spec = _target(body)
        budgets = context.runtime.budget_manager()
        current = budgets.budgets.get(name) if budgets is not None else None
        period = body.period or (current.period if current else context.gateway.config.config.budget.period)
        before = {"budget_limit": current.limit, "period": current.period} if current else None
        await context.runtime.publish(lambda doc: {**doc, "budgets": {
            **(doc.get("budgets") or {}), name: {**spec, "limit": body.budget_limit, "period": period}}})
        message = f"budget {name!r} set to ${body.budget_limit:.6g} ({period})"
        await context.audited(request, principal, "budget_changed", name, before=before,
                              after={"budget_limit": body.budget_limit, "period": period}, message=message)
        return {"success": True, "budget": name, "budget_limit": body.budget_limit, "period": period,
                "message": message}

    @app.get("/api/admin/metrics", tags=["metrics"], summary="Calls, tokens, errors and latency")
    async def metrics(principal: Admin,
                      recent: int = Query(50, ge=0, le=200, description="How many recent calls.")) -> dict[str, Any]:
        context.gateway.requests.flush()  # count what finished since the last background flush
        return context.insight.snapshot(recent)

    @app.get("/api/admin/audit", tags=["audit"], summary="The audit log, newest first")
    async def audit(principal: Admin, actor: str | None = None, action: str | None = None,
                    target: str | None = None,
                    since: str | None = Query(None, description="Unix time or ISO date."),
                    until: str | None = Query(None, description="Unix time or ISO date."),
                    limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)) -> dict[str, Any]:
        return await context.audit.query(actor=actor, action=action, target=target,
                                         since=_moment(since, "since"), until=_moment(until, "until"),
                                         limit=limit, offset=offset)


async def _key_budget(context: AdminContext, body: BudgetBody, request: Request, principal: Any) -> dict[str, Any]:
    store = context.gateway._store
    if store is None:
        raise ValidationError("this gateway has no virtual keys (set [server] master_key or secret)")
    assert body.key is not None
    record = await store.require(body.key)
    changes: dict[str, Any] = {"budget_limit": body.budget_limit}
    if body.period is not None:
        changes["budget_period"] = body.period
    updated = await store.update(body.key, **changes)
    if context.gateway.authenticator is not None:
        context.gateway.authenticator.invalidate()
    message = f"key {body.key!r} budget set to ${body.budget_limit:.6g} ({updated.budget_period})"
    await context.audited(request, principal, "budget_changed", f"key:{body.key}",
                          before={"budget_limit": record.budget_limit, "period": record.budget_period},
                          after={"budget_limit": updated.budget_limit, "period": updated.budget_period},
                          message=message)
    return {"success": True, "budget": f"key:{body.key}", "budget_limit": body.budget_limit,
            "period": updated.budget_period, "message": message}
