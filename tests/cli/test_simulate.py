"""``spoon-llm simulate``: --strict rejections in the vendors' words, --fault, --log and a busy port."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from spoon_llm.config import ConfigurationManager
from spoon_llm.errors import ModelNotFoundError
from spoon_llm.manager import LLMManager
from spoon_llm.testing import ProviderSimulator

from .conftest import CLI, KEY, cli_env


class Served:
    def __init__(self, directory: Path, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "spoon_llm", "simulate", "--port", "0", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=cli_env(directory), cwd=directory)
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert match, first + self.process.stderr.read()  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{match.group(1)}"
        self.client = httpx2.Client(base_url=self.url, timeout=30)

    def openai(self, body: dict, key: str | None = KEY) -> httpx2.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return self.client.post("/v1/chat/completions", json=body, headers=headers)

    def anthropic(self, body: dict) -> httpx2.Response:
        headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        return self.client.post("/v1/messages", json=body, headers=headers)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.communicate(timeout=30)


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Served]:
    served = Served(tmp_path, "--strict", "--models", "gpt-4.1-mini,claude-sonnet-4-5", "--log", "requests.jsonl")
    yield served
    served.stop()


HELLO = [{"role": "user", "content": "hi"}]


def test_strict_refuses_what_real_apis_refuse(strict: Served) -> None:
    ok = strict.openai({"model": "gpt-4.1-mini", "messages": HELLO})
    assert ok.status_code == 200
    cases = [
        (strict.openai({"model": "gpt-4.1-mini", "messages": HELLO}, key=None), 401, "didn't provide an API key"),
        (strict.openai({"model": "gpt-5-imaginary", "messages": HELLO}), 404, "gpt-5-imaginary"),
        (strict.openai({"model": "gpt-4.1-mini", "messages": []}), 400, "empty array"),
        (strict.openai({"model": "gpt-4.1-mini", "messages": HELLO, "temperature": 3}), 400,
         "Expected a value <= 2, but got 3"),
        (strict.openai({"model": "gpt-4.1-mini", "messages": HELLO, "temprature": 1}), 400,
         "Unrecognized request argument supplied: temprature"),
        (strict.anthropic({"model": "claude-sonnet-4-5", "messages": HELLO}), 400, "max_tokens: Field required"),
        (strict.anthropic({"model": "claude-sonnet-4-5", "messages": HELLO, "max_tokens": 10, "temperature": 1.5}),
         400, "temperature: Input should be less than or equal to 1"),
        (strict.anthropic({"model": "claude-sonnet-4-5", "messages": HELLO, "max_tokens": 10, "foo": 1}), 400,
         "foo: Extra inputs are not permitted"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        assert words in response.json()["error"]["message"]
    assert strict.anthropic({"model": "claude-sonnet-4-5", "messages": HELLO, "max_tokens": 10}).status_code == 200


def test_the_log_records_status_and_masks_keys(strict: Served, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"""
[providers.openai]
api_key = "{KEY}"
base_url = "{strict.url}/v1"
model = "gpt-4.1-mini"
""")
    cli = CLI(tmp_path)
    assert cli.run("chat", "--config", "c.toml", "hello").stdout == "Simulated reply to: hello\n"
    assert strict.openai({"model": "gpt-4.1-mini", "messages": []}).status_code == 400
    entries = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert [(e["endpoint"], e["status"], e["stream"]) for e in entries] == [("chat", 200, True), ("chat", 400, False)]
    text = (tmp_path / "requests.jsonl").read_text()
    assert KEY not in text and "***" in text


async def test_our_providers_pass_strict_mode_on_every_path() -> None:
    models = ["gpt-4.1-mini", "claude-sonnet-4-5", "gemini-2.5-flash"]
    async with ProviderSimulator(strict=models) as sim:
        config = ConfigurationManager({"providers": {
            "openai": {"api_key": KEY, "base_url": sim.openai_base_url, "model": models[0]},
            "anthropic": {"api_key": KEY, "base_url": sim.anthropic_base_url, "model": models[1]},
            "gemini": {"api_key": KEY, "base_url": sim.gemini_base_url, "model": models[2]},
        }, "default_provider": "openai"})
        async with LLMManager(config) as manager:
            for provider in ("openai", "anthropic", "gemini"):
                for options in ({}, {"temperature": 0.5, "max_tokens": 20, "top_p": 0.9}):
                    answer = await manager.chat("hello", provider=provider, fallback=False, **options)
                    assert answer.content == "Simulated reply to: hello"
                    chunks = [c.delta async for c in manager.chat_stream("hello", provider=provider,
                                                                         fallback=False, **options)]
                    assert "".join(chunks) == "Simulated reply to: hello"
            with pytest.raises(ModelNotFoundError):
                await manager.chat("hello", model="openai/gpt-5-imaginary", fallback=False)
        assert len(sim.requests_for(endpoint="chat")) == 13


def test_faults_fire_as_many_times_as_asked(tmp_path: Path) -> None:
    served = Served(tmp_path, "--fault", "openai:unavailable:2", "--fault", "anthropic:rate_limited=7:*")
    try:
        statuses = [served.openai({"model": "m", "messages": HELLO}).status_code for _ in range(3)]
        assert statuses == [503, 503, 200]
        for _ in range(2):
            limited = served.anthropic({"model": "claude-sonnet-4-5", "messages": HELLO, "max_tokens": 5})
            assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
            assert limited.json()["error"]["type"] == "rate_limit_error"
    finally:
        served.stop()


def test_faults_reach_every_vendor_the_simulator_serves(tmp_path: Path) -> None:
    served = Served(tmp_path, "--fault", "mistral:unavailable:1")
    try:
        body = {"model": "mistral-small-latest", "messages": HELLO}
        statuses = [served.client.post("/mistral/v1/chat/completions", json=body,
                                       headers={"authorization": f"Bearer {KEY}"}).status_code for _ in range(2)]
        assert statuses == [503, 200]
        assert served.openai({"model": "m", "messages": HELLO}).status_code == 200  # other vendors unaffected
    finally:
        served.stop()


def test_a_share_of_requests_fails_reproducibly(tmp_path: Path) -> None:
    outcomes = []
    for _ in range(2):
        served = Served(tmp_path, "--fault", "*:500:25%", "--seed", "3")
        try:
            outcomes.append([served.openai({"model": "m", "messages": HELLO}).status_code for _ in range(40)])
        finally:
            served.stop()
    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0].count(500) < 40 and set(outcomes[0]) == {200, 500}


@pytest.mark.parametrize(("spec", "words"), [
    ("openai", "is not VENDOR:KIND"),
    ("nobody:unavailable", "unknown vendor 'nobody'"),
    ("openai:sad", "unknown kind 'sad'"),
    ("openai:slow", "slow needs seconds"),
    ("openai:unavailable:often", "is not a count"),
])
def test_a_bad_fault_is_a_one_line_usage_error(tmp_path: Path, spec: str, words: str) -> None:
    result = subprocess.run([sys.executable, "-m", "spoon_llm", "simulate", "--port", "0", "--fault", spec],
                            capture_output=True, text=True, env=cli_env(tmp_path), timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and words in result.stderr and "fix:" in result.stderr


def test_a_busy_port_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "spoon_llm", "simulate", "--port", str(port)],
                                capture_output=True, text=True, env=cli_env(tmp_path), timeout=60)
    assert result.returncode == 1
    assert result.stderr == f"error: port {port} on 127.0.0.1 is already in use (fix: pick another with --port, " \
                            "or --port 0 for a free one)\n"
