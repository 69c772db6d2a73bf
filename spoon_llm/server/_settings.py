"""The ``[server]`` section of the configuration: what ``spoon-llm serve`` listens on and what it admits.

Kept free of server dependencies (pydantic only) so the configuration loader can validate the section, and
``spoon-llm config validate`` reject a misspelt key, without the ``server`` extra installed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["AUDIT_SECRET_ENV", "JWTSettings", "MASTER_KEY_ENV", "SECRET_ENV", "ServerSettings", "is_loopback"]

#: Environment variable that sets (and overrides) ``[server] master_key``.
MASTER_KEY_ENV = "SPOON_LLM_MASTER_KEY"
#: Environment variable that sets (and overrides) ``[server] secret``.
SECRET_ENV = "SPOON_LLM_SERVER_SECRET"
#: Environment variable that sets (and overrides) ``[server] audit_secret``.
AUDIT_SECRET_ENV = "SPOON_LLM_AUDIT_SECRET"


class JWTSettings(BaseModel):
    """Admin sign-in with ``Authorization: Bearer <JWT>`` (``[server.jwt]``), verified with PyJWT.

    Exactly one verification key: ``secret`` (HS256), ``public_key`` (a PEM text or the path of a PEM file; RS256
    or ES256) or ``jwks_file`` (a JSON Web Key Set file; the token's ``kid`` picks the key). ``issuer`` and
    ``audience`` are checked when set; the caller's role is read from the claim ``role_claim`` (a string or a list
    of strings) and is ``admin`` when it holds one of ``admin_roles``.

    Example::

        [server.jwt]
        secret = "${SPOON_LLM_JWT_SECRET}"
        issuer = "https://sso.example.com"
        audience = "spoon-llm-admin"
        role_claim = "role"
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    secret: SecretStr | None = Field(default=None, repr=False)
    public_key: str | None = None
    jwks_file: str | None = None
    algorithms: list[Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]] = (
        Field(default_factory=list))
    issuer: str | None = None
    audience: str | None = None
    role_claim: str = "role"
    admin_roles: list[str] = Field(default_factory=lambda: ["admin"])
    #: Seconds of clock difference tolerated for ``exp``/``nbf``/``iat``.
    leeway: float = Field(default=30.0, ge=0)


class ServerSettings(BaseModel):
    """Settings of the gateway (``[server]``); command-line options override ``host``, ``port`` and ``workers``.

    Example::

        [server]
        master_key = "${SPOON_LLM_MASTER_KEY}"
        max_inflight = 512
        max_body_bytes = 4_000_000
        cors_origins = ["https://chat.example.com"]
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    #: Address to bind; anything but loopback requires a master key.
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    #: Worker processes (each with its own in-flight cap and queue).
    workers: int = Field(default=1, ge=1, le=256)
    #: The administrator's key (also ``SPOON_LLM_MASTER_KEY``). Without it and without a ``secret`` there are no
    #: keys at all and every inference request is refused with 401.
    master_key: SecretStr | None = Field(default=None, repr=False)
    #: Server secret for hashing virtual keys (HMAC-SHA-256; also ``SPOON_LLM_SERVER_SECRET``); defaults to one
    #: derived from the master key.
    secret: SecretStr | None = Field(default=None, repr=False)
    #: Requests served at once by one worker; beyond it requests wait in the queue.
    max_inflight: int = Field(default=256, ge=1)
    #: Requests waiting for a slot (per worker); beyond it: 503 with Retry-After.
    max_queue: int = Field(default=1024, ge=0)
    #: Longest wait in the queue before a 503 (seconds).
    queue_timeout: float = Field(default=10.0, gt=0)
    #: Seconds sent in Retry-After with a saturation 503.
    retry_after: int = Field(default=1, ge=0)
    #: Largest request body accepted (bytes); larger ones get 413.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    #: Origins allowed by CORS (``["*"]`` for any); empty turns CORS off.
    cors_origins: list[str] = Field(default_factory=list)
    #: One JSON line per request on stderr (or ``access_log_path``), written off the request path.
    access_log: bool = True
    access_log_path: str | None = None
    #: Prometheus metrics at ``/metrics`` (admin key): the gateway's request series, plus the library's
    #: per-attempt series when the ``prometheus`` extra is installed. ``false`` removes the route.
    metrics: bool = True
    #: OpenTelemetry spans: one per inference request (continuing a client's ``traceparent``), with the
    #: library's request and attempt spans under it; needs the ``otel`` extra.
    otel: bool = False
    #: Seconds a graceful shutdown waits for in-flight requests.
    drain_timeout: float = Field(default=30.0, ge=0)
    #: Event loop and HTTP parser for uvicorn (``auto`` picks uvloop/httptools when installed).
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    http: Literal["auto", "h11", "httptools"] = "auto"
    #: The admin API under ``/api/admin`` (admin role: the master key, an admin virtual key or an admin JWT).
    admin_api: bool = True
    #: Key of the audit log's HMAC chain (also ``SPOON_LLM_AUDIT_SECRET``); defaults to one derived from the
    #: master key (then the server secret). Rotating it makes ``spoon-llm audit verify`` fail on older records.
    audit_secret: SecretStr | None = Field(default=None, repr=False)
    #: Seconds between a replica's checks for admin changes made through another replica (backend, budgets,
    #: endpoints) in the shared store.
    admin_refresh: float = Field(default=0.5, gt=0, le=60)
    #: JWT sign-in for admins (see :class:`JWTSettings`); off when absent.
    jwt: JWTSettings | None = None

    def resolved(self, env: Mapping[str, str] | None = None) -> ServerSettings:
        """A copy with the environment's master key and secret applied (the environment wins)."""
        env = os.environ if env is None else env
        update: dict[str, Any] = {}
        if env.get(MASTER_KEY_ENV):
            update["master_key"] = SecretStr(env[MASTER_KEY_ENV])
        if env.get(SECRET_ENV):
            update["secret"] = SecretStr(env[SECRET_ENV])
        if env.get(AUDIT_SECRET_ENV):
            update["audit_secret"] = SecretStr(env[AUDIT_SECRET_ENV])
        return self.model_copy(update=update) if update else self

    @property
    def master_key_value(self) -> str | None:
        """The master key in clear (``None`` when unset)."""
        return self.master_key.get_secret_value() if self.master_key is not None else None


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    import ipaddress  # only when a server starts: not on the configuration's import path

    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
