"""Pointing a backend at a new endpoint while a slow answer is in flight: the call in flight finishes on the old
endpoint, new calls go to the new one, and the retired client is closed once nothing uses it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx2

from spoon_llm.testing import Fault, ProviderSimulator

from ..conftest import Gateway
from .conftest import ADMIN, wait_for

CHAT = {"model": "slow-model", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def test_new_endpoint_applies_to_new_requests_without_dropping_the_one_in_flight(
        admin_gateway: Gateway, sim: ProviderSimulator, slow_sim: ProviderSimulator) -> None:
    url = admin_gateway.url
    # Warm the old endpoint's client so it holds a connection, then hold the next answer for a while.
    assert httpx2.post(url + "/v1/chat/completions", headers=ADMIN, json=CHAT, timeout=30).status_code == 200
    slow_sim.fault("openai", Fault.slow(8.0), model="slow-model")
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(httpx2.post, url + "/v1/chat/completions", headers=ADMIN, json=CHAT, timeout=60)
        wait_for(lambda: slow_sim.request_count == 2)  # the slow answer is being held by the old endpoint

        changed = httpx2.post(url + "/api/admin/backend/slow/endpoint", headers=ADMIN,
                              json={"endpoint": sim.openai_base_url}, timeout=30)
        assert changed.status_code == 200 and changed.json()["success"] is True
        assert not in_flight.done()  # 8 s of margin: the change happened while the call was in flight

        fresh = httpx2.post(url + "/v1/chat/completions", headers=ADMIN, json=CHAT, timeout=30)
        assert fresh.status_code == 200
        assert sim.request_count == 1 and sim.requests[0].body["model"] == "slow-model"  # the new endpoint
        answer = in_flight.result()
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
    assert slow_sim.request_count == 2  # nothing else went to the old endpoint
    # The old endpoint's client is closed once its call has finished (its connections go away).
    wait_for(lambda: slow_sim.open_connections == 0)

    audit = httpx2.get(url + "/api/admin/audit", headers=ADMIN, params={"action": "backend_endpoint_changed",
                                                                          "target": "slow"}, timeout=30).json()
    newest = audit["items"][0]
    assert newest["before"] == {"endpoint": slow_sim.openai_base_url}
    assert newest["after"] == {"endpoint": sim.openai_base_url.rstrip("/")}
    back = httpx2.post(url + "/api/admin/backend/slow/endpoint", headers=ADMIN,
                       json={"endpoint": slow_sim.openai_base_url, "health_check": True}, timeout=30).json()
    assert back["success"] is True
