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

from spoon_llm.providers.bedrock import BedrockProvider
from spoon_llm.testing import ProviderSimulator

# The example credentials of AWS's own SigV4 documentation and test suite.
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
AWS_SETTINGS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK",
                "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI")

ProviderFactory = Callable[..., Awaitable[BedrockProvider]]


@pytest.fixture(autouse=True)
def _no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in AWS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def settings(sim: ProviderSimulator, **config: Any) -> dict[str, Any]:
    """A provider section pointed at the simulator with the example credentials."""
    return {"base_url": sim.base_url, "aws_region": REGION, "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY, "model": MODEL, **config}


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
