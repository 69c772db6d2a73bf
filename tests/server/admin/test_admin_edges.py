"""Edges of the admin API, on a live gateway: bodies refused before they are read, JWT failures throttled like
wrong keys, text that cannot be stored, credentials in endpoint URLs, and parameters that cannot all be honoured."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from spoon_llm.errors import ValidationError
from spoon_llm.server._settings import JWTSettings
from spoon_llm.server.admin.insight import RequestInsight
from spoon_llm.server.admin.jwt_auth import JWTVerifier
from spoon_llm.server.auth import GatewayAuthError
from spoon_llm.server.keys import SQLiteKeyStore, new_key
from spoon_llm.testing import ProviderSimulator

from ..conftest import BODY_LIMIT, Gateway, start_gateway, stop_gateway
from .conftest import ADMIN, admin_config, bearer, token, wait_for

#: The password in the configured base_url of provider ``creds``; no answer, audit record or log line may hold it.
PASSWORD = "Sup3rS3cretPw"
CREDS = f"""
[providers.creds]
type = "openai"
api_key = "sk-sim-creds-0123456789"
base_url = "http://svc:{PASSWORD}@127.0.0.1:9/v1"
model = "creds-model"
"""
SURROGATE = b"\\ud800"  # a lone UTF-16 surrogate, as JSON writes it: valid JSON, not storable text


@pytest.fixture(scope="module")
def edges(simulators: tuple[ProviderSimulator, ProviderSimulator],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sim, slow = simulators
    state_dir = tmp_path_factory.mktemp("admin-edges")
    running = start_gateway(admin_config(sim, slow, state_dir) + CREDS, state_dir)
    yield running
    stop_gateway(running)


@pytest.fixture
def client(edges: Gateway) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=edges.url, timeout=60) as opened:
        yield opened


def error_of(response: httpx2.Response) -> dict[str, str]:
    return dict(response.json()["error"])


def raw_answer(gateway: Gateway, head: bytes, body_part: bytes) -> tuple[int, dict[str, str]]:
    """Send a request's head and only the start of its body; the status and error the gateway answers with.

    A gateway that waited for the rest of the body would never answer: the socket's timeout fails the test.
    """
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(head + body_part)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {data!r}"
            data += chunk
        headers, _, body = data.partition(b"\r\n\r\n")
        lines = headers.decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed in the middle of the answer"
            body += chunk
    return int(lines[0].split()[1]), dict(json.loads(body[:length])["error"])


# -- 1: the body limit, and sign-in before the body is read --------------------------------------------------------

def test_an_oversized_or_anonymous_admin_body_is_refused_before_it_is_read(edges: Gateway,
                                                                          client: httpx2.Client) -> None:
    start = b"POST /api/admin/keys HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    # A declared length over max_body_bytes: 413 at once, without a credential and without the body.
    status, error = raw_answer(edges, start + b"content-length: 64000000\r\n\r\n", b'{"alias": "' + b"x" * 1000)
    assert (status, error["code"]) == (413, "request_too_large")
    # No declared length (chunked) and no credential: 401 before the body is read.
    status, error = raw_answer(edges, start + b"transfer-encoding: chunked\r\n\r\n", b"400\r\n" + b"x" * 1024 + b"\r\n")
    assert (status, error["code"]) == (401, "missing_api_key")
    # Signed in, chunked, over the limit: counted as it arrives and refused.
    def chunks() -> Iterator[bytes]:
        yield b'{"alias": "'
        for _ in range(BODY_LIMIT // 10_000 + 5):
            yield b"x" * 10_000
        yield b'"}'

    answer = client.post("/api/admin/keys", headers={**ADMIN, "content-type": "application/json"}, content=chunks())
    assert answer.status_code == 413 and error_of(answer)["code"] == "request_too_large"
    assert client.get("/api/admin/keys", headers=ADMIN).status_code == 200


# -- 2: a JWT whose algorithm does not fit the JWKS key ------------------------------------------------------------

def test_a_jwt_whose_algorithm_does_not_fit_the_jwks_key_gets_401(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
    verifier = JWTVerifier(JWTSettings(jwks_file=str(tmp_path / "jwks.json")))
    claims = {"sub": "mallory", "role": "admin", "exp": int(time.time()) + 600}
    assert verifier.verify(jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "k1"})).role == "admin"
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "k1"})
    with pytest.raises(GatewayAuthError) as caught:
        verifier.verify(forged)
    assert (caught.value.status, caught.value.code) == (401, "token_invalid_signature")


# -- 3: failed JWT sign-ins are throttled like wrong keys ----------------------------------------------------------

def test_failed_jwts_count_toward_the_per_address_limit(simulators: tuple[ProviderSimulator, ProviderSimulator],
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    sim, slow = simulators
    state_dir = tmp_path_factory.mktemp("admin-jwt-throttle")  # a gateway of its own: this one gets throttled
    running = start_gateway(admin_config(sim, slow, state_dir), state_dir)
    try:
        with httpx2.Client(base_url=running.url, timeout=60) as api:
            guessed = bearer(token(secret="a-guessed-secret-0123456789abcdef-01234567"))
            answers = [api.get("/api/admin/keys", headers=guessed) for _ in range(60)]
    finally:
        stop_gateway(running)
    codes = [error_of(a)["code"] for a in answers]
    assert codes[0] == "token_invalid_signature"
    assert "too_many_failures" in codes, codes
    throttled = answers[codes.index("too_many_failures")]
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    assert set(codes[codes.index("too_many_failures"):]) == {"too_many_failures"}


# -- 4: text that cannot be stored ---------------------------------------------------------------------------------

def test_text_that_cannot_be_stored_is_refused_before_anything_is(client: httpx2.Client) -> None:
    json_headers = {**ADMIN, "content-type": "application/json"}
    created = client.post("/api/admin/keys", headers=json_headers,
                          content=b'{"alias": "surrogate", "metadata": {"team": "' + SURROGATE + b'"}}')
    assert created.status_code == 400 and error_of(created)["code"] == "invalid_request"
    assert client.get("/api/admin/keys/surrogate", headers=ADMIN).status_code == 404
    assert client.get("/api/admin/keys", headers=ADMIN).status_code == 200
    budget = client.post("/api/admin/budget", headers=json_headers,
                         content=b'{"budget_limit": 1, "team": "' + SURROGATE + b'"}')
    assert budget.status_code == 400 and error_of(budget)["code"] == "invalid_request"
    state = client.get("/api/admin/budget", headers=ADMIN)
    assert state.status_code == 200 and not [n for n in state.json()["budgets"] if n.startswith("tag:team=")]
    changed = client.get("/api/admin/audit", headers=ADMIN, params={"action": "budget_changed"}).json()
    assert changed["total"] == 0
    # The command line makes keys through the same record: it refuses such text too.
    with pytest.raises(ValidationError, match="Unicode"):
        new_key("cli-surrogate", b"s" * 32, metadata={"team": "\ud800"})


# -- 5: credentials in a configured endpoint URL -------------------------------------------------------------------

def test_credentials_in_an_endpoint_url_are_never_shown_audited_or_logged(edges: Gateway,
                                                                          client: httpx2.Client) -> None:
    log = edges.state_dir / "gateway.stderr"
    # A change refused by its health check is audited as failed, and so also logged (WARNING).
    dead = client.post("/api/admin/backend/creds/endpoint", headers=ADMIN,
                       json={"endpoint": "http://127.0.0.1:11/v1", "health_check": True})
    assert dead.status_code == 200 and dead.json()["success"] is False
    assert dead.json()["endpoint"] == "http://127.0.0.1:9/v1" and PASSWORD not in dead.text
    wait_for(lambda: "backend_endpoint_changed" in log.read_text())
    moved = client.post("/api/admin/backend/creds/endpoint", headers=ADMIN, json={"endpoint": "http://127.0.0.1:10/v1"})
    assert moved.status_code == 200 and moved.json()["success"] is True
    assert PASSWORD not in moved.text and "127.0.0.1:9/v1" in moved.json()["message"]
    records = client.get("/api/admin/audit", headers=ADMIN,
                         params={"action": "backend_endpoint_changed", "target": "creds"}).json()["items"]
    assert [r["before"] for r in records] == [{"endpoint": "http://127.0.0.1:9/v1"}] * 2
    assert PASSWORD not in json.dumps(records)
    for given in (f"http://admin:{PASSWORD}@h:99999", f"http://h:1/v1?api_key={PASSWORD}", f"http://{PASSWORD}@h"):
        refused = client.post("/api/admin/backend/creds/endpoint", headers=ADMIN, json={"endpoint": given})
        assert refused.status_code == 400 and PASSWORD not in refused.text, refused.text
    assert PASSWORD not in log.read_text()


# -- 6: spaces, control characters and hosts that are not host names -----------------------------------------------

@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9/v1\x00", "http://127.0.0.1:9/v 1", "http://exa mple.com",
                                      "http://127.0.0.1:9/v1\x7f", "http://h\x01st:9", "http://bad!host/v1",
                                      "http://-h-/v1"])
def test_endpoints_with_spaces_control_characters_or_bad_hosts_are_refused(client: httpx2.Client,
                                                                           endpoint: str) -> None:
    refused = client.post("/api/admin/backend/down/endpoint", headers=ADMIN, json={"endpoint": endpoint})
    assert refused.status_code == 400 and error_of(refused)["code"] == "invalid_request"
    changed = client.get("/api/admin/audit", headers=ADMIN,
                         params={"action": "backend_endpoint_changed", "target": "down"}).json()
    assert changed["total"] == 0


# -- 7: a budget names one target ----------------------------------------------------------------------------------

def test_a_budget_naming_a_key_and_a_team_is_refused(client: httpx2.Client) -> None:
    assert client.post("/api/admin/keys", headers=ADMIN, json={"alias": "two-targets"}).status_code == 201
    refused = client.post("/api/admin/budget", headers=ADMIN,
                          json={"budget_limit": 3, "key": "two-targets", "team": "t-two"})
    assert refused.status_code == 400
    assert error_of(refused)["message"] == "give at most one of key, team, user and tag"
    assert client.get("/api/admin/keys/two-targets", headers=ADMIN).json()["budget_limit"] is None
    assert "tag:team=t-two" not in client.get("/api/admin/budget", headers=ADMIN).json()["budgets"]


# -- 8: a key's costs cannot be narrowed -------------------------------------------------------------------------

def test_costs_of_a_key_refuse_the_filters_they_cannot_apply(client: httpx2.Client) -> None:
    assert client.get("/api/admin/costs", headers=ADMIN, params={"key": "master"}).status_code == 200
    for params, named in (({"since": "2999-01-01"}, ["since"]), ({"until": "2000-01-01", "model": "m"},
                                                                  ["until", "model"]),
                          ({"period": "day", "team": "t"}, ["team", "period=day"]), ({"by": "model"}, ["by=model"])):
        refused = client.get("/api/admin/costs", headers=ADMIN, params={"key": "master", **params})
        assert refused.status_code == 400, params
        message = error_of(refused)["message"]
        assert all(name in message for name in named), message


# -- 9: times must be finite ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/admin/costs", "/api/admin/costs/history", "/api/admin/audit"])
def test_non_finite_times_are_refused(client: httpx2.Client, path: str) -> None:
    for name in ("since", "until"):
        for value in ("nan", "inf", "-inf", "1e400"):
            refused = client.get(path, headers=ADMIN, params={name: value})
            assert refused.status_code == 400, (name, value)
            assert name in error_of(refused)["message"]
    assert client.get(path, headers=ADMIN, params={"since": "0"}).status_code == 200


# -- 10: no virtual key passes for the master key ------------------------------------------------------------------

def test_the_alias_master_is_reserved(client: httpx2.Client) -> None:
    for alias in ("master", "Master"):
        refused = client.post("/api/admin/keys", headers=ADMIN, json={"alias": alias, "role": "admin"})
        assert refused.status_code == 400 and "reserved" in error_of(refused)["message"]
    with pytest.raises(ValidationError, match="reserved"):
        new_key("master", b"s" * 32)


# -- 11: every key's usage is counted ------------------------------------------------------------------------------

def test_usage_is_counted_for_every_key_past_the_cap_on_models() -> None:
    insight = RequestInsight()
    entries = [(time.time(), f"r{i}", "POST", "chat", 200, f"key{i:04d}", f"model-{i}", "openai", 1.0, 3, 2, 0.5,
                "ok", "127.0.0.1", "") for i in range(1500)]
    insight.add(entries)
    assert len(insight.by_key) == 1500 and "__other__" not in insight.by_key
    assert (insight.by_key["key1499"].calls, insight.by_key["key1499"].cost) == (1, 0.5)
    assert len(insight.by_model) == insight.max_groups + 1 and "__other__" in insight.by_model  # still bounded


# -- 12: revoking twice --------------------------------------------------------------------------------------------

async def test_revoking_a_revoked_key_writes_and_audits_nothing_more(client: httpx2.Client, tmp_path: Path) -> None:
    assert client.post("/api/admin/keys", headers=ADMIN, json={"alias": "twice-revoked"}).status_code == 201
    first = client.delete("/api/admin/keys/twice-revoked", headers=ADMIN)
    second = client.delete("/api/admin/keys/twice-revoked", headers=ADMIN)
    assert first.status_code == second.status_code == 200
    assert second.json()["status"] == "revoked" and second.json()["revoked_at"] == first.json()["revoked_at"]
    records = client.get("/api/admin/audit", headers=ADMIN,
                         params={"action": "key_revoked", "target": "twice-revoked"}).json()
    assert [(r["result"], r["before"]) for r in records["items"]] == [("ok", {"status": "active"})]

    store = SQLiteKeyStore(tmp_path / "keys.db")  # the store itself: a second revocation is no change
    try:
        record, _ = new_key("stored", b"s" * 32)
        await store.create(record)
        revoked = await store.revoke("stored")
        version = await store.version()
        assert (await store.revoke("stored")).revoked_at == revoked.revoked_at
        assert await store.version() == version
    finally:
        await store.close()
