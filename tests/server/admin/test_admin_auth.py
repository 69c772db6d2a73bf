"""Who may use the admin API: the master key, admin virtual keys and admin JWTs; everyone else gets 401 or 403
with a clear JSON body. RS256/ES256 public keys and JWKS files are verified too (keys made with cryptography)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from spoon_llm.errors import ConfigurationError
from spoon_llm.server._settings import JWTSettings
from spoon_llm.server.admin.jwt_auth import JWTVerifier
from spoon_llm.server.auth import GatewayAuthError

from .conftest import ADMIN, AUDIENCE, ISSUER, MASTER, bearer, token

ROUTE = "/api/admin/backend/current"


def error_of(response: httpx2.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"])
    return dict(body["error"])


def test_master_key_and_admin_virtual_key_are_admins(api: httpx2.Client) -> None:
    assert api.get(ROUTE, headers=ADMIN).status_code == 200
    assert api.get(ROUTE, headers={"x-api-key": MASTER}).status_code == 200
    admin_key = api.post("/api/admin/keys", headers=ADMIN, json={"alias": "ops-admin", "role": "admin"}).json()["key"]
    assert api.get(ROUTE, headers=bearer(admin_key)).status_code == 200


def test_user_virtual_key_gets_403(api: httpx2.Client) -> None:
    user_key = api.post("/api/admin/keys", headers=ADMIN, json={"alias": "plain-user"}).json()["key"]
    response = api.get(ROUTE, headers=bearer(user_key))
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "admin_only" and "plain-user" in error["message"] and user_key not in response.text
    # Nor may it change anything.
    assert api.post("/api/admin/budget", headers=bearer(user_key), json={"budget_limit": 1}).status_code == 403


def test_missing_and_wrong_keys_get_401(api: httpx2.Client) -> None:
    missing = api.get(ROUTE)
    assert missing.status_code == 401 and error_of(missing)["code"] == "missing_api_key"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = api.get(ROUTE, headers=bearer("sk-spoon-not-a-real-key-000000000000000000000"))
    assert wrong.status_code == 401 and error_of(wrong)["code"] == "invalid_api_key"
    scheme = api.get(ROUTE, headers={"authorization": "Basic abc"})
    assert scheme.status_code == 401


def test_jwt_with_admin_role_is_an_admin_and_is_the_audit_actor(api: httpx2.Client) -> None:
    headers = bearer(token(sub="dana@example.com"))
    assert api.get(ROUTE, headers=headers).status_code == 200
    assert api.post("/api/admin/budget", headers=headers, json={"budget_limit": 500.0}).json()["success"]
    entry = api.get("/api/admin/audit", headers=ADMIN, params={"limit": 1}).json()["items"][0]
    assert (entry["actor"], entry["action"]) == ("jwt:dana@example.com", "budget_changed")


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"exp": time.time() - 3600}, "token_expired"),
    ({"aud": "someone-else"}, "token_invalid_audience"),
    ({"iss": "https://evil.test"}, "token_invalid_issuer"),
    ({"secret": "a-different-secret-0123456789abcdef-0123"}, "token_invalid_signature"),
])
def test_bad_jwts_get_401_naming_the_check(api: httpx2.Client, kwargs: dict[str, object], code: str) -> None:
    response = api.get(ROUTE, headers=bearer(token(**kwargs)))  # type: ignore[arg-type]
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == code and error["type"] == "authentication_error"
    assert error["message"].startswith("invalid admin token: ")


def test_malformed_jwt_gets_401(api: httpx2.Client) -> None:
    response = api.get(ROUTE, headers=bearer("eyJhbGciOiJIUzI1NiJ9.%%%.c2ln"))
    assert response.status_code == 401 and error_of(response)["code"] == "token_malformed"


def test_jwt_with_user_role_gets_403(api: httpx2.Client) -> None:
    for roles in (["user"], [], ["viewer", "user"]):
        response = api.get(ROUTE, headers=bearer(token(roles=roles)))
        assert response.status_code == 403 and error_of(response)["code"] == "admin_only"


def test_jwt_is_not_accepted_on_inference_routes(api: httpx2.Client) -> None:
    # Admin JWTs sign in to the admin API only; calling models takes an API key.
    response = api.post("/v1/chat/completions", headers=bearer(token()),
                        json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 401


# -- public keys and JWKS (the verifier on its own) ---------------------------------------------------------------

def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _claims(**extra: object) -> dict[str, object]:
    return {"sub": "svc", "role": "admin", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, **extra}


def test_rs256_public_key_file_and_es256_pem(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "rsa.pem").write_text(_pem(rsa_key))
    verifier = JWTVerifier(JWTSettings(public_key=str(tmp_path / "rsa.pem"), issuer=ISSUER, audience=AUDIENCE))
    principal = verifier.verify(jwt.encode(_claims(), rsa_key, algorithm="RS256"))
    assert (principal.alias, principal.role) == ("jwt:svc", "admin")

    ec_key = ec.generate_private_key(ec.SECP256R1())
    verifier = JWTVerifier(JWTSettings(public_key=_pem(ec_key), audience=AUDIENCE))
    assert verifier.verify(jwt.encode(_claims(role="user"), ec_key, algorithm="ES256")).role == "user"
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(GatewayAuthError) as caught:
        verifier.verify(jwt.encode(_claims(), other, algorithm="ES256"))
    assert (caught.value.status, caught.value.code) == (401, "token_invalid_signature")
    # An HS256 token signed with the public key text must not pass (algorithm confusion).
    with pytest.raises(GatewayAuthError):
        verifier.verify(jwt.encode(_claims(), "x" * 64, algorithm="HS256"))


def test_jwks_file_picks_the_key_by_kid(tmp_path: Path) -> None:
    first, second = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    keys = []
    for kid, key in (("one", first), ("two", second)):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": keys}))
    verifier = JWTVerifier(JWTSettings(jwks_file=str(tmp_path / "jwks.json"), audience=AUDIENCE))
    signed = jwt.encode(_claims(), second, algorithm="RS256", headers={"kid": "two"})
    assert verifier.verify(signed).role == "admin"
    mislabelled = jwt.encode(_claims(), second, algorithm="RS256", headers={"kid": "one"})
    with pytest.raises(GatewayAuthError) as caught:
        verifier.verify(mislabelled)
    assert caught.value.code == "token_invalid_signature"
    unknown = jwt.encode(_claims(), second, algorithm="RS256", headers={"kid": "three"})
    with pytest.raises(GatewayAuthError, match="kid 'three'"):
        verifier.verify(unknown)


def test_jwt_settings_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="exactly one"):
        JWTVerifier(JWTSettings())
    with pytest.raises(ConfigurationError, match="exactly one"):
        JWTVerifier(JWTSettings(secret="s" * 32, public_key="x"))
    with pytest.raises(ConfigurationError, match="algorithms"):
        JWTVerifier(JWTSettings(secret="s" * 32, algorithms=["RS256"]))
    with pytest.raises(ConfigurationError, match="cannot be read"):
        JWTVerifier(JWTSettings(public_key=str(tmp_path / "missing.pem")))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigurationError, match="JSON Web Key Set"):
        JWTVerifier(JWTSettings(jwks_file=str(tmp_path / "bad.json")))
    assert "s" * 32 not in repr(JWTVerifier(JWTSettings(secret="s" * 32)))
