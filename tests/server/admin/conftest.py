"""A live gateway for the admin API tests: ``spoon-llm serve`` with a master key and JWT sign-in, over the
session's provider simulators, with its own state directory (so its audit log and keys are its own)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest

from spoon_llm.testing import ProviderSimulator

from ..conftest import Gateway, gateway_config, start_gateway, stop_gateway
from ..keys.conftest import redis_url  # noqa: F401 - the session's redis-server, for these tests too

MASTER = "sk-master-admin-0123456789abcdef"
JWT_SECRET = "jwt-test-secret-0123456789abcdef-0123456789"
ISSUER = "https://sso.test"
AUDIENCE = "spoon-llm-admin"


def admin_config(sim: ProviderSimulator, slow: ProviderSimulator, state_dir: Path) -> str:
    text = gateway_config(sim, slow, state_dir, master_key=MASTER)
    return text + (f'\n[server.jwt]\nsecret = "{JWT_SECRET}"\nissuer = "{ISSUER}"\naudience = "{AUDIENCE}"\n'
                   'role_claim = "roles"\n')


def token(*, sub: str = "ops@example.com", roles: Any = ("admin",), exp: float | None = None,
          aud: str = AUDIENCE, iss: str = ISSUER, secret: str = JWT_SECRET) -> str:
    claims = {"sub": sub, "roles": list(roles), "iss": iss, "aud": aud,
              "exp": int(exp if exp is not None else time.time() + 600), "iat": int(time.time())}
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


ADMIN = bearer(MASTER)


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m spoon_llm <args> --config <config>`` without provider keys in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("SPOON_LLM")}
    return subprocess.run([sys.executable, "-m", "spoon_llm", *args, "--config", str(config)], capture_output=True,
                          text=True, timeout=120, env=env)


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds (a generous bound: the machine may be loaded; never a timing assert)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the overall timeout")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def admin_gateway(simulators: tuple[ProviderSimulator, ProviderSimulator],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sim, slow = simulators
    state_dir = tmp_path_factory.mktemp("admin-gateway")
    running = start_gateway(admin_config(sim, slow, state_dir), state_dir)
    yield running
    stop_gateway(running)


@pytest.fixture
def api(admin_gateway: Gateway) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=admin_gateway.url, timeout=60) as client:
        yield client
