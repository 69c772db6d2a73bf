"""Virtual keys through a live ``spoon-llm serve``: keys made with ``spoon-llm keys``, used by the official openai
and anthropic SDKs; each refusal with its status, its family's body shape and Retry-After where waiting helps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from spoon_llm.testing import ProviderSimulator

from ..conftest import Gateway, gateway_of_its_own

MASTER = "sk-master-keys-e2e-0123456789"


@pytest.fixture(scope="module")
def keyed_gateway(simulators: tuple[ProviderSimulator, ProviderSimulator],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gateway_of_its_own(simulators, tmp_path_factory, "keys-gateway", master_key=MASTER) as running:
        yield running


def create(gateway: Gateway, alias: str, *options: str) -> str:
    result = subprocess.run([sys.executable, "-m", "spoon_llm", "keys", "create", alias, *options, "--json",
                             "--config", str(gateway.state_dir / "gateway.toml")],
                            capture_output=True, text=True, timeout=120, env=_env())
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["key"])


def keys(gateway: Gateway, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "spoon_llm", "keys", *args, "--config",
                             str(gateway.state_dir / "gateway.toml")], capture_output=True, text=True, timeout=120,
                            env=_env())
    assert result.returncode == 0, result.stderr
    return result.stdout


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("SPOON_LLM")}


_clients: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def client(gateway: Gateway, key: str) -> openai.OpenAI:
    made = openai.OpenAI(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
    _clients.append(made)
    return made


def chat(gateway: Gateway, key: str, model: str = "fast") -> openai.types.chat.ChatCompletion:
    return client(gateway, key).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                        max_tokens=16)


def test_keys_made_by_the_cli_work_and_every_refusal_has_its_status(keyed_gateway: Gateway) -> None:
    gateway = keyed_gateway
    alice = create(gateway, "alice", "--model", "fast", "--team", "research")
    assert chat(gateway, alice).choices[0].message.content
    models = [m.id for m in client(gateway, alice).models.list()]
    assert models == ["fast"]  # a key sees only what it may use

    with pytest.raises(openai.PermissionDeniedError) as denied:
        chat(gateway, alice, model="gpt-4o")
    assert denied.value.status_code == 403 and "may not use" in str(denied.value)

    with pytest.raises(openai.AuthenticationError) as missing:
        client(gateway, "sk-spoon-" + "y" * 43).models.list()
    assert missing.value.status_code == 401 and missing.value.body["code"] == "invalid_api_key"  # type: ignore[index]

    # The Anthropic SDK sends x-api-key.
    claude = anthropic.Anthropic(api_key=alice, base_url=gateway.url, max_retries=0)
    _clients.append(claude)
    reply = claude.messages.create(model="fast", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert reply.content

    limited = create(gateway, "limited", "--rpm", "2")
    chat(gateway, limited)
    chat(gateway, limited)
    with pytest.raises(openai.RateLimitError) as limited_error:
        chat(gateway, limited)
    response = limited_error.value.response
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1

    poor = create(gateway, "poor", "--budget", "0.0000001")
    with pytest.raises(openai.APIStatusError) as broke:
        chat(gateway, poor)  # the request's worst-case cost does not fit: refused before it is sent
    assert broke.value.status_code == 402 and broke.value.body["code"] == "budget_exceeded"  # type: ignore[index]
    assert "'poor' has used its total budget" in str(broke.value)
    rich = create(gateway, "rich", "--budget", "5")
    assert chat(gateway, rich).choices[0].message.content

    # The Anthropic family gets its own error shape.
    stranger = anthropic.Anthropic(api_key="sk-spoon-" + "z" * 43, base_url=gateway.url, max_retries=0)
    _clients.append(stranger)
    with pytest.raises(anthropic.AuthenticationError) as claude_denied:
        stranger.messages.create(model="fast", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert claude_denied.value.body["type"] == "error"  # type: ignore[index]

    keys(gateway, "revoke", "alice")
    with pytest.raises(openai.AuthenticationError) as revoked:
        chat(gateway, alice)
    assert "'alice' was revoked" in str(revoked.value)

    # The plain keys are nowhere in what the gateway wrote.
    written = "".join(p.read_text(errors="replace") for p in Path(gateway.state_dir).iterdir() if p.is_file()
                      and p.suffix != ".db")
    for key in (alice, limited, poor, rich):
        assert key not in written and key[len("sk-spoon-"):] not in written
