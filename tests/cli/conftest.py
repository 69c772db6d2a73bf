"""The command line as users run it: a real ``spoon-llm`` subprocess talking to an in-process simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spoon_llm.testing import ProviderSimulator

KEY = "sk-test-cli-0123456789abcdefghij"
ANTHROPIC_KEY = "sk-ant-test-cli-0123456789abcdef"


@pytest.fixture(scope="module")
def simulator() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture
def sim(simulator: ProviderSimulator) -> Iterator[ProviderSimulator]:
    simulator.reset()
    yield simulator
    simulator.reset()


def write_config(directory: Path, sim: ProviderSimulator, extra: str = "") -> Path:
    """A configuration with OpenAI (default) falling back to Anthropic, both served by ``sim``."""
    path = directory / "spoon_llm.toml"
    path.write_text(f"""
default_provider = "openai"
fallback_chain = ["anthropic"]

[retry]
max_retries = 4
initial_backoff = 0.01
max_backoff = 0.05
jitter = false

[providers.openai]
api_key = "{KEY}"
base_url = "{sim.openai_base_url}"
model = "gpt-4.1-mini"

[providers.anthropic]
api_key = "{ANTHROPIC_KEY}"
base_url = "{sim.anthropic_base_url}"
model = "claude-sonnet-4-5"

[models]
fast = "openai/gpt-4.1-mini"
{extra}
""")
    return path


def cli_env(directory: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("SPOON_LLM_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "SPOON_LLM_STATE_PATH": str(directory / "usage.db"),
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


class CLI:
    """Runs ``python -m spoon_llm`` in a working directory holding the configuration."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = cli_env(directory)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "spoon_llm", *args]

    def run(self, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), input=stdin if stdin is not None else "", capture_output=True,
                              text=True, env=self.env, cwd=self.directory, timeout=timeout)


@pytest.fixture
def cli(tmp_path: Path, sim: ProviderSimulator) -> CLI:
    write_config(tmp_path, sim)
    return CLI(tmp_path)
