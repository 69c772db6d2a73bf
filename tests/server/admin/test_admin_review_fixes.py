"""Findings of a review of the admin API, each checked on a live gateway: a key's budget spend in its usage,
failed key operations in the audit log, the API docs without third-party assets, no dashboard without the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from spoon_llm.testing import ProviderSimulator

from ..conftest import Gateway, gateway_config, start_gateway, stop_gateway
from .conftest import ADMIN, bearer, wait_for
from .test_admin_routes import chat


def test_a_keys_usage_shows_the_budget_it_spent(api: httpx2.Client) -> None:
    plain = api.post("/api/admin/keys", headers=ADMIN, json={"alias": "spender", "budget_limit": 5.0}).json()["key"]
    for _ in range(3):
        assert chat(api, bearer(plain)).status_code == 200

    def spent() -> float:
        budget = api.get("/api/admin/keys/spender/usage", headers=ADMIN).json()["budget"]
        return float(budget["spent"])

    wait_for(lambda: spent() > 0)  # spend is written behind the answers
    usage = api.get("/api/admin/keys/spender/usage", headers=ADMIN).json()
    assert usage["calls"] == 3 and usage["cost_usd"] > 0
    assert usage["budget"]["spent"] == pytest.approx(usage["cost_usd"], rel=1e-6)
    assert usage["budget"]["reserved"] == 0


@pytest.mark.parametrize(("method", "path", "body", "action", "status"), [
    ("POST", "/api/admin/keys", {"alias": "twice"}, "key_created", 409),
    ("DELETE", "/api/admin/keys/nobody-here", None, "key_revoked", 404),
    ("PATCH", "/api/admin/keys/nobody-here", {"rpm": 5}, "key_updated", 404),
])
def test_failed_key_operations_are_audited(api: httpx2.Client, method: str, path: str, body: object,
                                           action: str, status: int) -> None:
    if status == 409:
        assert api.post("/api/admin/keys", headers=ADMIN, json={"alias": "twice"}).status_code == 201
    answer = api.request(method, path, headers=ADMIN, json=body)
    assert answer.status_code == status
    target = "twice" if status == 409 else "nobody-here"
    items = api.get("/api/admin/audit", headers=ADMIN, params={"action": action, "target": target}).json()["items"]
    failed = [i for i in items if i["result"] == "failed"]
    assert failed, items
    assert failed[0]["actor"] == "master" and answer.json()["error"]["message"] in failed[0]["message"]


def test_the_api_docs_load_nothing_from_third_parties(api: httpx2.Client) -> None:
    page = api.get("/api/admin/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script" not in html and "https://" not in html and "cdn" not in html
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "/api/admin/openapi.json" in html and "/api/admin/keys/{alias}/usage" in html


@pytest.fixture(scope="module")
def no_admin(simulators: tuple[ProviderSimulator, ProviderSimulator],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sim, slow = simulators
    state_dir: Path = tmp_path_factory.mktemp("no-admin")
    running = start_gateway(gateway_config(sim, slow, state_dir, master_key="sk-master-noadmin-0123456789",
                                           admin_api=False), state_dir)
    yield running
    stop_gateway(running)


def test_no_dashboard_without_the_admin_api(no_admin: Gateway) -> None:
    for path in ("/ui/", "/ui/app.css", "/ui"):
        answer = httpx2.get(no_admin.url + path, timeout=10, follow_redirects=False)
        assert answer.status_code == 404
        assert "admin_api" in answer.json()["error"]["message"]
    assert httpx2.get(no_admin.url + "/health", timeout=10).status_code == 200
