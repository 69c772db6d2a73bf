"""Constants and helpers shared by the Bedrock tests (importable by name: the test folders are not packages)."""

from __future__ import annotations

from typing import Any

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


def settings(sim: ProviderSimulator, **config: Any) -> dict[str, Any]:
    """A provider section pointed at the simulator with the example credentials."""
    return {"base_url": sim.base_url, "aws_region": REGION, "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY, "model": MODEL, **config}
