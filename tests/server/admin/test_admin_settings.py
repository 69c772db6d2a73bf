"""The admin API's settings do what they say or are refused at start-up with the key to fix (in-process app)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from spoon_llm.errors import ConfigurationError, ValidationError
from spoon_llm.server.admin.runtime import check_endpoint, level_of
from spoon_llm.server.app import create_app
from spoon_llm.testing import ProviderSimulator

from .conftest import JWT_SECRET, bearer, token


def config(tmp_path: Path, **server: Any) -> dict[str, Any]:
    return {"providers": {"openai": {"api_key": "sk-sim-0123456789", "base_url": "http://127.0.0.1:9/v1"}},
            "state": {"path": str(tmp_path / "state.db")}, "server": {"access_log": False, **server}}


async def call(app: Any, path: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://gw") as client:
        return await client.get(path, headers=headers)


async def test_admin_api_off_answers_404_saying_why(tmp_path: Path) -> None:
    app = create_app(config(tmp_path, master_key="sk-master-0123456789", admin_api=False))
    await app.startup()
    try:
        response = await call(app, "/api/admin/backend/current", bearer("sk-master-0123456789"))
        assert response.status_code == 404 and "admin_api" in response.json()["error"]["message"]
        assert app.admin is None
    finally:
        await app.shutdown()


async def test_jwt_only_gateway_needs_an_audit_secret(tmp_path: Path) -> None:
    app = create_app(config(tmp_path, jwt={"secret": JWT_SECRET, "issuer": "https://sso.test",
                                           "audience": "spoon-llm-admin", "role_claim": "roles"}))
    with pytest.raises(ConfigurationError, match="audit_secret"):
        await app.startup()
    await app.shutdown()

    app = create_app(config(tmp_path, audit_secret="audit-0123456789", jwt={
        "secret": JWT_SECRET, "issuer": "https://sso.test", "audience": "spoon-llm-admin", "role_claim": "roles"}))
    await app.startup()
    try:
        response = await call(app, "/api/admin/backend/current", bearer(token()))
        assert response.status_code == 200 and response.json()["backend"] == "openai"
    finally:
        await app.shutdown()


def test_misspelt_admin_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        create_app(config(tmp_path, admin_refresh=0))
    with pytest.raises(ConfigurationError):
        create_app(config(tmp_path, jwt={"secret": "x", "audiance": "typo"}))


def test_endpoint_validation_and_levels() -> None:
    assert check_endpoint(" http://vllm.internal:8000/ ") == "http://vllm.internal:8000"
    assert check_endpoint("https://h/v1") == "https://h/v1"
    for wrong in ("", "vllm:8000", "http://:8000", "http://h:99999", 42):
        with pytest.raises(ValidationError):
            check_endpoint(wrong)
    assert [level_of(p) for p in (None, 0, 74.9, 75, 90, 99.9, 100, 250)] == [
        "ok", "ok", "ok", "warning", "critical", "critical", "blocked", "blocked"]


async def test_configured_budget_alerts_at_75_and_90_percent_and_then_refuses(
        tmp_path: Path, sim: ProviderSimulator) -> None:
    settings = config(tmp_path, master_key="sk-master-0123456789")
    settings["providers"]["openai"].update(base_url=sim.openai_base_url, model="gpt-4o-mini")
    settings["budget"] = {"limit": 0.00001}
    app = create_app(settings)
    await app.startup()
    headers = bearer("sk-master-0123456789")
    try:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://gw") as client:
            statuses = []
            for _ in range(8):
                response = await client.post("/v1/chat/completions", headers=headers, json={
                    "model": "gpt-4o-mini", "max_tokens": 6, "messages": [{"role": "user", "content": "hi"}]})
                statuses.append(response.status_code)
            assert statuses[0] == 200 and statuses[-1] != 200, statuses
            assert "budget" in response.text.lower()
            state = (await client.get("/api/admin/budget", headers=headers)).json()
    finally:
        await app.shutdown()
    assert state["budget_limit"] == 0.00001 and state["budget_used_percent"] >= 75
    assert state["level"] in ("warning", "critical", "blocked")
    assert state["thresholds"][0] == {"percent": 75, "level": "warning", "reached": True}
    assert {"warning"} <= {a["level"] for a in state["alerts"] if a["budget"] == "global"}
