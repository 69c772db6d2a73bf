"""Fixtures for the Bedrock provider tests: providers pointed at the simulator with fixed AWS credentials.

Bedrock has one transport (native), so these tests do not run on the shared ``transport`` fixture. Every test
starts from an environment without AWS settings (credentials, region, profile, config files), so nothing on the
machine running the tests can change which credentials are used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from _bedrock_helpers import AWS_SETTINGS, settings

from spoon_llm.providers.bedrock import BedrockProvider
from spoon_llm.testing import ProviderSimulator

ProviderFactory = Callable[..., Awaitable[BedrockProvider]]


@pytest.fixture(autouse=True)
def _no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in AWS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
async def make_provider(sim: ProviderSimulator) -> AsyncIterator[ProviderFactory]:
    """Build initialised providers pointed at the simulator; closed after the test."""
    made: list[BedrockProvider] = []

    async def factory(**config: Any) -> BedrockProvider:
        provider = BedrockProvider()
        await provider.initialize(settings(sim, **config))
        made.append(provider)
        return provider

    yield factory
    for provider in made:
        await provider.cleanup()
