"""Bodies and headers at the edges of what the gateway accepts: each refused with a 400 in the family's shape
before anything is sent (never a 500), a deadline header that can only tighten the configured one, and a stream
whose backend reports no usage charged to the key all the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from spoon_llm.testing import Fault, ProviderSimulator

from .conftest import MASTER_KEY, Gateway, gateway_config, running_gateways
from .test_gateway_errors import _virtual_key

HI = [{"role": "user", "content": "hi"}]
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def _post(gateway: Gateway, path: str, body: dict[str, Any], **headers: str) -> httpx2.Response:
    return httpx2.post(gateway.url + path, headers={**AUTH, **headers}, content=json.dumps(body), timeout=10)


OPENAI_BODIES = [
    ("/v1/chat/completions", {"model": "fast", "messages": [{"role": "user", "content": 5}]}, "messages"),
    ("/v1/chat/completions", {"model": "fast", "messages": [{"role": "user", "content": [5]}]}, "messages"),
    ("/v1/chat/completions", {"model": "fast", "messages": [{"role": "assistant", "content": None,
                                                             "tool_calls": 5}]}, "messages"),
    ("/v1/chat/completions", {"model": "fast", "messages": HI, "tools": 5}, "tools"),
    ("/v1/chat/completions", {"model": "fast", "messages": HI, "tools": [5]}, "tools"),
    ("/v1/chat/completions", {"model": "fast", "messages": HI, "self": 1}, "self"),
    ("/v1/chat/completions", {"model": "fast", "messages": HI, "max_tokens": -1000000000}, "max_tokens"),
    ("/v1/chat/completions", {"model": "fast", "messages": HI, "max_tokens": 0}, "max_tokens"),
    ("/v1/chat/completions", {"model": "fast", "messages": HI, "max_tokens": True}, "max_tokens"),
    ("/v1/chat/completions", {"model": "fast", "messages": HI, "max_completion_tokens": -1},
     "max_completion_tokens"),
    ("/v1/chat/completions", {"model": "fast", "messages": HI, "timeout": "abc"}, "timeout"),
    ("/v1/chat/completions", {"model": "fast", "messages": HI, "stream": "true"}, "stream"),
    ("/v1/chat/completions", {"model": "fast", "messages": HI, "stream_options": {"include_usage": True}},
     "stream_options"),
    ("/v1/completions", {"model": "fast", "prompt": "hi", "max_tokens": -5}, "max_tokens"),
    ("/v1/completions", {"model": "fast", "prompt": "hi", "self": 1}, "self"),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["x"], "inputs": ["y"]}, "inputs"),
]


@pytest.mark.parametrize(("path", "body", "param"), OPENAI_BODIES)
def test_odd_openai_bodies_are_a_400_naming_the_field(gateway: Gateway, sim: ProviderSimulator, path: str,
                                                      body: dict[str, Any], param: str) -> None:
    response = _post(gateway, path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert sim.request_count == 0  # refused before anything was sent


@pytest.mark.parametrize("body", [
    {"model": "gpt-4o", "max_tokens": 5, "messages": HI, "stream": "yes"},
    {"model": "gpt-4o", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": 5, "signature": "s"},
                                          {"type": "text", "text": "ok"}]},
        {"role": "user", "content": "go on"}]},
])
def test_odd_anthropic_bodies_are_a_400_in_anthropic_shape(gateway: Gateway, sim: ProviderSimulator,
                                                           body: dict[str, Any]) -> None:
    response = _post(gateway, "/v1/messages", body)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert sim.request_count == 0


@pytest.mark.parametrize("value", ["inf", "Infinity", "1e400", "nan", "-1", "0"])
def test_a_deadline_header_must_be_positive_and_finite(gateway: Gateway, sim: ProviderSimulator,
                                                       value: str) -> None:
    response = _post(gateway, "/v1/chat/completions", {"model": "fast", "messages": HI},
                     **{"x-spoon-deadline": value})
    assert response.status_code == 400 and "x-spoon-deadline" in response.json()["error"]["message"]
    assert sim.request_count == 0


@pytest.fixture(scope="module")
def tight_gateway(simulators: tuple[ProviderSimulator, ProviderSimulator],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway whose ``request_timeout`` is 1 s."""
    sim, slow = simulators
    state_dir = tmp_path_factory.mktemp("tight")
    text = gateway_config(sim, slow, state_dir, master_key=MASTER_KEY).replace("request_timeout = 20",
                                                                             "request_timeout = 1", 1)
    with running_gateways([(text, state_dir)]) as (running,):
        yield running


def test_a_deadline_header_cannot_lift_the_configured_request_timeout(tight_gateway: Gateway,
                                                                       sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.slow(4), model="sluggish-model", times=None)
    response = _post(tight_gateway, "/v1/chat/completions", {"model": "sluggish-model", "messages": HI},
                     **{"x-spoon-deadline": "60"})
    assert response.status_code == 504 and response.json()["error"]["code"] == "upstream_timeout"


def _stream_case(events: list[Any]) -> dict[str, Any]:
    return {"provider": "openai", "kind": "chat_stream",
            "request": {"method": "POST", "path": "/v1/chat/completions", "body": {}},
            "response": {"status": 200, "content_type": "text/event-stream",
                         "headers": {"content-type": "text/event-stream"},
                         "sse": [{"data": e if isinstance(e, str) else json.dumps(e)} for e in events]}}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _spend(gateway: Gateway, alias: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("SPOON_LLM")}
    result = subprocess.run([sys.executable, "-m", "spoon_llm", "keys", "show", alias, "--json", "--config",
                             str(Path(gateway.state_dir) / "gateway.toml")], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["spend"]  # type: ignore[no-any-return]


async def test_a_complete_stream_without_usage_is_charged_for_what_it_delivered(gateway: Gateway,
                                                                              sim: ProviderSimulator) -> None:
    key = await _virtual_key(gateway, "no-usage-stream", budget_limit=100.0)
    text = "lorem ipsum dolor sit amet " * 400  # about 2,700 tokens, and no usage event after them
    sim.replay(_stream_case([_chunk({"role": "assistant", "content": text}), _chunk({}, "stop"), "[DONE]"]))
    with httpx2.stream("POST", gateway.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                       json={"model": "gpt-4o", "stream": True, "max_tokens": 4000,
                             "messages": [{"role": "user", "content": "write"}]}, timeout=10) as response:
        body = response.read()
    assert response.status_code == 200 and body.endswith(b"data: [DONE]\n\n")
    spend = _spend(gateway, "no-usage-stream")
    assert spend["reserved"] == 0
    assert spend["spent"] > 0  # priced from the text delivered, as a stream cut short is
