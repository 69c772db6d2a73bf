"""A live gateway for the server tests: ``spoon-llm serve`` as a real subprocess over provider simulators.

One gateway process and two simulators (the main one, and a slow one only the disconnect tests use) serve the
whole session, so the suite pays the start-up once. Each test starts from a simulator without scripts or faults.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from spoon_llm.testing import ProviderSimulator

MASTER_KEY = "sk-master-test-0123456789abcdef"
BODY_LIMIT = 200_000
#: Provider sections (type openai, model "<name>-model") that fault tests break one each, so that circuits opened
#: and cool-downs started by one test never reach another.
FAULT_PROVIDERS = ("flaky", "limited", "throttled", "capped", "broken", "down", "sluggish", "denied")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_config(sim: ProviderSimulator, slow: ProviderSimulator, state_dir: Path, **server: object) -> str:
    """The configuration every gateway test process reads (``server`` overrides ``[server]`` entries)."""
    settings = {"max_body_bytes": BODY_LIMIT, "access_log_path": str(state_dir / "access.log")} | server
    lines = [f"{key} = {value!r}".replace("'", '"') if not isinstance(value, bool) else
             f"{key} = {str(value).lower()}" for key, value in settings.items()]
    fault_sections = "\n".join(
        f'[providers.{name}]\ntype = "openai"\napi_key = "sk-sim-{name}-0123456789"\n'
        f'base_url = "{sim.openai_base_url}"\nmodel = "{name}-model"\n' for name in FAULT_PROVIDERS)
    return f"""
default_provider = "openai"
request_timeout = 20

[retry]
max_retries = 1
initial_backoff = 0.01
max_backoff = 0.05
max_retry_after = 1
jitter = false

[state]
path = "{state_dir / 'state.db'}"

[providers.openai]
api_key = "sk-sim-openai-0123456789"
base_url = "{sim.openai_base_url}"
model = "gpt-4o-mini"
models = ["gpt-4o", "text-embedding-3-small"]

[providers.anthropic]
api_key = "sk-ant-sim-0123456789"
base_url = "{sim.anthropic_base_url}"
model = "claude-sonnet-4-5"

{fault_sections}
[providers.slow]
type = "openai"
api_key = "sk-sim-slow-0123456789"
base_url = "{slow.openai_base_url}"
model = "slow-model"

[models]
fast = "openai/gpt-4o-mini"
resilient = {{ targets = ["flaky/flaky-model"], fallback = ["anthropic"] }}

[server]
{chr(10).join(lines)}
"""


@dataclass
class Gateway:
    """A running ``spoon-llm serve`` process."""

    process: subprocess.Popen[bytes]
    port: int
    state_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics(self) -> str:
        response = httpx2.get(self.url + "/metrics", headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=5)
        response.raise_for_status()
        return response.text

    def access_log(self) -> list[str]:
        path = self.state_dir / "access.log"
        return path.read_text().splitlines() if path.exists() else []


def start_gateway(config_text: str, state_dir: Path, *extra_args: str, env: dict[str, str] | None = None) -> Gateway:
    """Write the configuration, start ``python -m spoon_llm serve`` and wait until ``/health`` answers."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "gateway.toml"
    path.write_text(config_text)
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("SPOON_LLM")}
    clean.update(env or {})
    with open(state_dir / "gateway.stderr", "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([sys.executable, "-m", "spoon_llm", "serve", "--config", str(path), "--port",
                                    str(port), *extra_args], stdout=log, stderr=subprocess.STDOUT, env=clean,
                                   cwd=state_dir)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited with {process.returncode}: "
                               f"{(state_dir / 'gateway.stderr').read_text()[-2000:]}")
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return Gateway(process, port, state_dir)
        except httpx2.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the gateway did not answer /health within 30 s")
        time.sleep(0.1)


@contextmanager
def running_gateways(configs: Iterable[tuple[str, Path]]) -> Iterator[list[Gateway]]:
    """A gateway per (configuration text, state directory); every one started is stopped however the block ends."""
    running: list[Gateway] = []
    try:
        for text, state_dir in configs:
            running.append(start_gateway(text, state_dir))
        yield running
    finally:
        for gateway in running:
            stop_gateway(gateway)


@contextmanager
def gateway_of_its_own(simulators: tuple[ProviderSimulator, ProviderSimulator],
                       tmp_path_factory: pytest.TempPathFactory, name: str, **server: object) -> Iterator[Gateway]:
    """One gateway over the session's simulators in a new state directory ``name`` (``server``: its settings)."""
    sim, slow = simulators
    state_dir = tmp_path_factory.mktemp(name)
    with running_gateways([(gateway_config(sim, slow, state_dir, **server), state_dir)]) as (running,):
        yield running


def redis_state(config_text: str, url: str, prefix: str) -> str:
    """The configuration with its state in Redis under ``prefix`` (a 10 s timeout: replicas sending hundreds of
    requests at once on a small machine give Redis time)."""
    return config_text.replace("[state]\n", f'[state]\nbackend = "redis"\nurl = "{url}"\nkey_prefix = "{prefix}"\n'
                                            'timeout = 10\n', 1)


def stop_gateway(gateway: Gateway) -> None:
    gateway.process.terminate()
    try:
        gateway.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        gateway.process.kill()
        gateway.process.wait()


@pytest.fixture(scope="session")
def simulators() -> Iterator[tuple[ProviderSimulator, ProviderSimulator]]:
    """The main simulator and the slow one (each in its own thread, for the whole session)."""
    with ProviderSimulator() as sim, ProviderSimulator() as slow:
        yield sim, slow


@pytest.fixture(scope="session")
def gateway(simulators: tuple[ProviderSimulator, ProviderSimulator],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One live gateway for the session, with the master key."""
    with gateway_of_its_own(simulators, tmp_path_factory, "gateway", master_key=MASTER_KEY) as running:
        yield running


@pytest.fixture
def sim(simulators: tuple[ProviderSimulator, ProviderSimulator]) -> Iterator[ProviderSimulator]:
    """The main simulator, without scripts, faults or records left by an earlier test."""
    simulators[0].reset()
    yield simulators[0]
    simulators[0].reset()


@pytest.fixture
def slow_sim(simulators: tuple[ProviderSimulator, ProviderSimulator]) -> Iterator[ProviderSimulator]:
    """The simulator behind the ``slow`` provider."""
    simulators[1].reset()
    yield simulators[1]
    simulators[1].reset()
