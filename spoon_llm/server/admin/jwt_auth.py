"""Admin sign-in with ``Authorization: Bearer <JWT>``, verified with PyJWT.

The key is an HS256 secret, an RS256/ES256 public key (PEM text or file) or a JWKS file (the token's ``kid``
chooses the key); ``exp``, ``nbf`` and ``iat`` are checked with ``leeway``, ``iss`` and ``aud`` when configured.
The role comes from the configured claim. Every failure is a :class:`GatewayAuthError` (401) whose ``code`` says
which check failed (``token_expired``, ``token_invalid_audience``, ``token_invalid_issuer``,
``token_invalid_signature``, ``token_malformed``, ``token_invalid``) and whose message never echoes the token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...errors import ConfigurationError
from .._settings import JWTSettings
from ..auth import GatewayAuthError, Principal

__all__ = ["JWTVerifier", "looks_like_jwt"]

_HMAC = ["HS256", "HS384", "HS512"]
_PUBLIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts separated by dots, the first a JSON object (``eyJ``): not an API key."""
    return token.startswith("eyJ") and token.count(".") == 2


class JWTVerifier:
    """Turns a JWT into a :class:`Principal` (alias = the ``sub`` claim), or raises :class:`GatewayAuthError`."""

    def __init__(self, settings: JWTSettings) -> None:
        import jwt  # PyJWT, with the server extra; imported when the gateway starts

        self._jwt = jwt
        self.settings = settings
        sources = [s for s in (settings.secret, settings.public_key, settings.jwks_file) if s is not None]
        if len(sources) != 1:
            raise ConfigurationError("[server.jwt] needs exactly one of secret (HS256), public_key (RS256/ES256: a "
                                     "PEM text or file) or jwks_file", key="server.jwt")
        self._key: Any = None
        self._keys: dict[str | None, Any] = {}
        if settings.secret is not None:
            self._key = settings.secret.get_secret_value()
            self.algorithms = list(settings.algorithms) or ["HS256"]
            wrong = [a for a in self.algorithms if a not in _HMAC]
        elif settings.public_key is not None:
            text = settings.public_key
            if "-----BEGIN" not in text:
                text = self._read(text, "public_key")
            self._key = text
            self.algorithms = list(settings.algorithms) or ["RS256", "ES256"]
            wrong = [a for a in self.algorithms if a not in _PUBLIC]
        else:
            assert settings.jwks_file is not None
            self._load_jwks(settings.jwks_file)
            self.algorithms = list(settings.algorithms) or ["RS256", "ES256"]
            wrong = [a for a in self.algorithms if a not in _PUBLIC]
        if wrong:
            raise ConfigurationError(f"[server.jwt] algorithms {wrong} do not fit the configured key (a secret "
                                     f"takes {_HMAC}, a public key or JWKS {_PUBLIC})", key="server.jwt.algorithms")

    def __repr__(self) -> str:
        return f"JWTVerifier(algorithms={self.algorithms}, issuer={self.settings.issuer!r})"

    @staticmethod
    def _read(path: str, name: str) -> str:
        try:
            return Path(path).expanduser().read_text()
        except OSError as exc:
            raise ConfigurationError(f"[server.jwt] {name} {path!r} cannot be read: {exc.strerror}; give the PEM "
                                     "text itself or a readable file", key=f"server.jwt.{name}") from None

    def _load_jwks(self, path: str) -> None:
        text = self._read(path, "jwks_file")
        try:
            keys = self._jwt.PyJWKSet.from_json(text).keys
        except (self._jwt.PyJWTError, json.JSONDecodeError, KeyError, ValueError) as exc:
            raise ConfigurationError(f"[server.jwt] jwks_file {path!r} is not a usable JSON Web Key Set: {exc}",
                                     key="server.jwt.jwks_file") from None
        self._keys = {key.key_id: key.key for key in keys}
        if len(keys) == 1:
            self._keys[None] = keys[0].key  # a token without kid may use the only key

    def _fail(self, code: str, message: str) -> GatewayAuthError:
        return GatewayAuthError(f"invalid admin token: {message}", status=401, code=code)

    def verify(self, token: str) -> Principal:
        """The token's principal (role ``admin`` when its role claim holds one of ``admin_roles``)."""
        jwt = self._jwt
        settings = self.settings
        key = self._key
        if key is None:
            try:
                kid = jwt.get_unverified_header(token).get("kid")
            except jwt.PyJWTError as exc:
                raise self._fail("token_malformed", f"the token cannot be decoded ({exc})") from None
            key = self._keys.get(kid) if kid is None or isinstance(kid, str) else None
            if key is None:
                raise self._fail("token_invalid_signature", f"no key in the JWKS has kid {kid!r}")
        options: dict[str, Any] = {"require": ["exp", "sub"], "verify_aud": settings.audience is not None}
        try:
            claims = jwt.decode(token, key, algorithms=self.algorithms, audience=settings.audience,
                                issuer=settings.issuer, leeway=settings.leeway, options=options)
        except jwt.ExpiredSignatureError:
            raise self._fail("token_expired", "the token has expired (exp is in the past)") from None
        except jwt.InvalidAudienceError:
            raise self._fail("token_invalid_audience",
                             f"the token's audience (aud) is not {settings.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise self._fail("token_invalid_issuer", f"the token's issuer (iss) is not {settings.issuer!r}") from None
        except jwt.InvalidSignatureError:
            raise self._fail("token_invalid_signature", "the signature does not verify with the configured "
                                                         "key") from None
        except jwt.InvalidAlgorithmError:
            raise self._fail("token_invalid_signature", f"the token's algorithm is not one of "
                                                         f"{self.algorithms}") from None
        except jwt.DecodeError as exc:
            raise self._fail("token_malformed", f"the token cannot be decoded ({exc})") from None
        except jwt.PyJWTError as exc:
            raise self._fail("token_invalid", str(exc)) from None
        except (TypeError, ValueError):  # PyJWT's answer to an algorithm that does not fit a JWKS key's type
            raise self._fail("token_invalid_signature", "the token's algorithm does not fit the configured "
                                                         "key") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise self._fail("token_invalid", "the token has no subject (sub)")
        roles = claims.get(settings.role_claim)
        held = {roles} if isinstance(roles, str) else {r for r in roles if isinstance(r, str)} if isinstance(
            roles, list) else set()
        admin = bool(held & set(settings.admin_roles))
        return Principal(alias=f"jwt:{subject}", role="admin" if admin else "user", models=None, tags={}, key_id=None)
