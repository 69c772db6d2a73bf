"""Every admin route against a live ``spoon-llm serve`` process, with the shapes the issue names exactly."""

from __future__ import annotations

import httpx2
import pytest

from spoon_llm.testing import Fault, ProviderSimulator

from ..conftest import Gateway
from .conftest import ADMIN, bearer

CHAT = {"model": "fast", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def chat(api: httpx2.Client, key_headers: dict[str, str] = ADMIN, **extra: object) -> httpx2.Response:
    return api.post("/v1/chat/completions", headers=key_headers, json={**CHAT, **extra})


def test_backend_current_names_the_default_its_models_health_and_since(api: httpx2.Client) -> None:
    body = api.get("/api/admin/backend/current", headers=ADMIN).json()
    assert {"backend", "models", "health", "since"} <= set(body)
    assert body["backend"] in ("openai", "anthropic")  # another test of this module may have switched it
    assert body["health"] in ("healthy", "unhealthy") and body["since"].endswith("Z")
    assert all({"deployment", "model", "available", "healthy", "circuit"} <= set(d) for d in body["deployments"])


def test_switch_backend_with_and_without_health_check(api: httpx2.Client, sim: ProviderSimulator) -> None:
    switched = api.post("/api/admin/backend/switch", headers=ADMIN, json={"backend": "anthropic",
                                                                           "skip_health_check": False})
    assert switched.status_code == 200
    body = switched.json()
    assert set(body) == {"success", "backend", "message"} and body["success"] is True
    assert body["backend"] == "anthropic" and "anthropic" in body["message"]
    current = api.get("/api/admin/backend/current", headers=ADMIN).json()
    assert current["backend"] == "anthropic" and current["models"] == ["claude-sonnet-4-5"]

    # A backend whose health check fails is refused, unless forced (then it is back in rotation).
    sim.fault("openai", Fault.server_error(), endpoint="models", times=None)
    refused = api.post("/api/admin/backend/switch", headers=ADMIN, json={"backend": "down"}).json()
    assert refused == {"success": False, "backend": "down", "message": refused["message"]}
    assert "health check" in refused["message"]
    assert api.get("/api/admin/backend/current", headers=ADMIN).json()["backend"] == "anthropic"
    forced = api.post("/api/admin/backend/switch", headers=ADMIN, json={"backend": "down",
                                                                         "skip_health_check": True}).json()
    assert forced["success"] is True and "back in rotation" in forced["message"]
    current = api.get("/api/admin/backend/current", headers=ADMIN).json()
    assert current["backend"] == "down" and all(d["available"] for d in current["deployments"])
    sim.reset()

    unknown = api.post("/api/admin/backend/switch", headers=ADMIN, json={"backend": "nowhere"}).json()
    assert unknown["success"] is False and "nowhere" in unknown["message"]
    back = api.post("/api/admin/backend/switch", headers=ADMIN, json={"backend": "openai"}).json()
    assert back["success"] is True


def test_switch_rejects_a_malformed_body_with_the_field_named(api: httpx2.Client) -> None:
    response = api.post("/api/admin/backend/switch", headers=ADMIN, json={"backend": "openai", "force": True})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and "force" in error["message"]


def test_costs_have_a_number_per_backend_and_the_budget_fields(api: httpx2.Client) -> None:
    assert chat(api).status_code == 200
    body = api.get("/api/admin/costs", headers=ADMIN).json()
    for field in ("total", "budget_limit", "remaining", "budget_used_percent"):
        assert field in body
    assert body["openai"] > 0 and isinstance(body["anthropic"], float)
    backends = {k: v for k, v in body.items() if k not in ("total", "budget_limit", "remaining",
                                                          "budget_used_percent")}
    assert body["total"] == pytest.approx(sum(backends.values()))
    assert isinstance(body["budget_used_percent"], float)
    by_model = api.get("/api/admin/costs", headers=ADMIN, params={"by": "model", "period": "day"}).json()
    assert by_model["by_model"]["gpt-4o-mini"] > 0
    only = api.get("/api/admin/costs", headers=ADMIN, params={"model": "no-such-model"}).json()
    assert only["total"] == 0.0
    by_key = api.get("/api/admin/costs", headers=ADMIN, params={"by": "key"}).json()
    assert by_key["by_key"]["master"] > 0
    bad = api.get("/api/admin/costs", headers=ADMIN, params={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()["error"]["message"]


def test_budget_set_read_and_reflected_in_costs(api: httpx2.Client) -> None:
    set_ = api.post("/api/admin/budget", headers=ADMIN, json={"budget_limit": 150.0})
    assert set_.status_code == 200 and set_.json()["success"] is True
    budget = api.get("/api/admin/budget", headers=ADMIN).json()
    assert budget["budget_limit"] == 150.0 and budget["level"] == "ok"
    assert [(t["percent"], t["level"]) for t in budget["thresholds"]] == [(75, "warning"), (90, "critical"),
                                                                          (100, "blocked")]
    costs = api.get("/api/admin/costs", headers=ADMIN).json()
    assert costs["budget_limit"] == 150.0
    assert costs["remaining"] == pytest.approx(150.0 - budget["spent"] - budget["reserved"])
    for wrong in ({"budget_limit": -1}, {"budget_limit": 5, "team": "a", "user": "b"}, {"limit": 5}):
        response = api.post("/api/admin/budget", headers=ADMIN, json=wrong)
        assert response.status_code == 400, wrong


def test_key_budget_and_cost_history(api: httpx2.Client) -> None:
    api.post("/api/admin/keys", headers=ADMIN, json={"alias": "budgeted"})
    set_ = api.post("/api/admin/budget", headers=ADMIN, json={"budget_limit": 3.0, "key": "budgeted",
                                                               "period": "daily"}).json()
    assert (set_["success"], set_["budget"], set_["period"]) == (True, "key:budgeted", "daily")
    shown = api.get("/api/admin/keys/budgeted", headers=ADMIN).json()
    assert (shown["budget_limit"], shown["budget_period"]) == (3.0, "daily")
    assert api.get("/api/admin/budget", headers=ADMIN).json()["keys"]["budgeted"]["budget_limit"] == 3.0
    entry = api.get("/api/admin/audit", headers=ADMIN, params={"target": "key:budgeted"}).json()["items"][0]
    assert entry["before"] == {"budget_limit": None, "period": "total"}
    assert entry["after"] == {"budget_limit": 3.0, "period": "daily"}
    missing = api.post("/api/admin/budget", headers=ADMIN, json={"budget_limit": 1.0, "key": "nobody"})
    assert missing.status_code == 404

    assert chat(api).status_code == 200
    history = api.get("/api/admin/costs/history", headers=ADMIN, params={"bucket": "minute",
                                                                         "by": "provider"}).json()
    assert history["bucket"] == "minute"
    row = history["items"][-1]
    assert {"start", "ts", "provider", "requests", "cost"} <= set(row) and row["requests"] >= 1


def test_team_budget_alerts_at_75_and_90_percent_and_blocks_at_the_limit(api: httpx2.Client) -> None:
    created = api.post("/api/admin/keys", headers=ADMIN, json={"alias": "spender",
                                                               "metadata": {"team": "alerts"}})
    key = bearer(created.json()["key"])
    cost = float(chat(api, key).headers["x-spoon-cost-usd"])
    # Room for a few calls like that one (each reserves its worst case of 8 output tokens first).
    assert api.post("/api/admin/budget", headers=ADMIN, json={"budget_limit": cost * 5,
                                                              "team": "alerts"}).json()["success"]
    statuses = [chat(api, key).status_code for _ in range(12)]
    assert 200 in statuses and statuses[-1] == 402, statuses  # refused once the budget is used up
    state = api.get("/api/admin/budget", headers=ADMIN).json()
    team = state["budgets"]["tag:team=alerts"]
    assert team["budget_used_percent"] >= 75 and team["level"] in ("warning", "critical", "blocked")
    levels = {a["level"] for a in state["alerts"] if a["budget"] == "tag:team=alerts"}
    assert "warning" in levels


def test_metrics_overview_by_backend_by_model_and_recent_calls(api: httpx2.Client) -> None:
    assert chat(api).status_code == 200
    body = api.get("/api/admin/metrics", headers=ADMIN, params={"recent": 3}).json()
    assert set(body) == {"overview", "by_backend", "by_model", "recent_calls"}
    overview = body["overview"]
    for field in ("total_calls", "successful_calls", "failed_calls", "total_tokens", "input_tokens",
                  "output_tokens", "error_rate", "latency_ms"):
        assert field in overview
    assert overview["total_calls"] >= 1 and set(overview["latency_ms"]) == {"p50", "p95", "p99"}
    assert {"calls", "total_tokens", "avg_latency_ms", "errors"} <= set(body["by_backend"]["openai"])
    assert body["by_model"]["fast"]["calls"] >= 1
    recent = body["recent_calls"]
    assert 1 <= len(recent) <= 3
    call = recent[0]
    assert call["attempts"] == [{"deployment": "openai", "result": "ok"}]
    assert call["key_alias"] == "master" and "sk-" not in str(recent)  # aliases only, never keys


def test_backend_health_all_and_one_without_spending_tokens(api: httpx2.Client, sim: ProviderSimulator) -> None:
    every = api.get("/api/admin/backend/health", headers=ADMIN).json()
    assert {"openai", "anthropic", "slow"} <= set(every)
    one = api.get("/api/admin/backend/health/openai", headers=ADMIN).json()
    for field in ("healthy", "reachable", "auth_valid", "response_time_ms", "deployments"):
        assert field in one
    assert one["healthy"] and one["reachable"] and one["auth_valid"] is True
    assert all(r.path.endswith("/models") for r in sim.requests)  # model lists only: no tokens spent
    sim.fault("openai", Fault.unauthorized(), endpoint="models", times=None)
    denied = api.get("/api/admin/backend/health/denied", headers=ADMIN).json()
    assert denied["healthy"] is False and denied["reachable"] is True and denied["auth_valid"] is False
    missing = api.get("/api/admin/backend/health/nowhere", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "backend_not_found"


def test_endpoint_change_is_validated(api: httpx2.Client) -> None:
    for wrong in ("ftp://host:21", "http://", "http://user:pw@host:8000", "not a url", "http://h:8000/?q=1"):
        response = api.post("/api/admin/backend/sluggish/endpoint", headers=ADMIN, json={"endpoint": wrong})
        assert response.status_code == 400, wrong
        assert response.json()["error"]["code"] == "invalid_request"
    unknown = api.post("/api/admin/backend/nowhere/endpoint", headers=ADMIN, json={"endpoint": "http://h:1"})
    assert unknown.status_code == 404
    # With a health check, an endpoint that does not answer is not applied.
    dead = api.post("/api/admin/backend/sluggish/endpoint", headers=ADMIN,
                    json={"endpoint": "http://127.0.0.1:9", "health_check": True}).json()
    assert dead["success"] is False and "health check" in dead["message"]


def test_keys_create_list_show_patch_usage_and_revoke(api: httpx2.Client) -> None:
    created = api.post("/api/admin/keys", headers=ADMIN, json={
        "alias": "carol", "models": ["fast"], "budget_limit": 2.5, "rpm": 100, "expires": "30d",
        "metadata": {"team": "web"}})
    assert created.status_code == 201
    body = created.json()
    plain = body["key"]
    assert plain.startswith("sk-spoon-") and body["alias"] == "carol" and body["status"] == "active"
    assert chat(api, bearer(plain)).status_code == 200

    listed = api.get("/api/admin/keys", headers=ADMIN).json()
    assert "carol" in [k["alias"] for k in listed["keys"]] and plain not in str(listed)
    shown = api.get("/api/admin/keys/carol", headers=ADMIN).json()
    assert shown["budget_limit"] == 2.5 and shown["spend"]["limit"] == 2.5 and plain not in str(shown)
    patched = api.patch("/api/admin/keys/carol", headers=ADMIN, json={"rpm": 7, "budget_limit": None}).json()
    assert (patched["rpm"], patched["budget_limit"]) == (7, None)
    usage = api.get("/api/admin/keys/carol/usage", headers=ADMIN).json()
    assert usage["alias"] == "carol" and usage["calls"] >= 1 and usage["limits"]["rpm"] == 7

    revoked = api.delete("/api/admin/keys/carol", headers=ADMIN).json()
    assert revoked["status"] == "revoked"
    refused = chat(api, bearer(plain))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "key_revoked"

    assert api.get("/api/admin/keys/nobody", headers=ADMIN).status_code == 404
    duplicate = api.post("/api/admin/keys", headers=ADMIN, json={"alias": "carol"})
    assert duplicate.status_code == 409
    assert api.patch("/api/admin/keys/carol", headers=ADMIN, json={"rpm": 0}).status_code == 400
    assert api.post("/api/admin/keys", headers=ADMIN, json={"alias": "bad alias!"}).status_code == 400


def test_audit_log_is_paged_and_filterable(api: httpx2.Client) -> None:
    api.post("/api/admin/keys", headers=ADMIN, json={"alias": "audited"})
    api.delete("/api/admin/keys/audited", headers=ADMIN)
    page = api.get("/api/admin/audit", headers=ADMIN, params={"limit": 1}).json()
    assert set(page) == {"items", "total", "limit", "offset"} and page["limit"] == 1 and len(page["items"]) == 1
    newest = page["items"][0]
    assert (newest["action"], newest["target"], newest["actor"], newest["result"]) == (
        "key_revoked", "audited", "master", "ok")
    for field in ("seq", "time", "source", "before", "after", "mac", "prev"):
        assert field in newest
    created = api.get("/api/admin/audit", headers=ADMIN, params={"action": "key_created", "actor": "master"}).json()
    assert created["total"] >= 1 and all(r["action"] == "key_created" for r in created["items"])
    later = api.get("/api/admin/audit", headers=ADMIN, params={"since": "2999-01-01"}).json()
    assert later["total"] == 0
    second = api.get("/api/admin/audit", headers=ADMIN, params={"limit": 1, "offset": 1}).json()
    assert second["items"][0]["seq"] == newest["seq"] - 1


def test_openapi_schema_lists_every_route(api: httpx2.Client, admin_gateway: Gateway) -> None:
    schema = api.get("/api/admin/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/admin/backend/current", "/api/admin/backend/switch", "/api/admin/costs", "/api/admin/budget",
            "/api/admin/metrics", "/api/admin/backend/health", "/api/admin/backend/health/{name}",
            "/api/admin/backend/{name}/endpoint", "/api/admin/keys", "/api/admin/keys/{alias}",
            "/api/admin/keys/{alias}/usage", "/api/admin/audit", "/api/admin/costs/history"} <= paths


def test_unknown_admin_routes_answer_in_the_error_shape(api: httpx2.Client) -> None:
    for method, path in (("GET", "/api/admin/nothing"), ("PUT", "/api/admin/costs")):
        response = api.request(method, path, headers=ADMIN)
        assert response.status_code in (404, 405)
        assert response.json()["error"]["code"] in ("not_found", "method_not_allowed")
