"""Fixtures for the Vertex AI provider tests: providers pointed at the simulator, on each transport.

The Gemini conformance helpers (recorded request -> our call, result checks) are shared through ``sys.path``:
Vertex AI speaks the same format.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from spoon_llm.providers.vertex import VertexProvider
from spoon_llm.testing import ProviderSimulator

_GEMINI_TESTS = str(Path(__file__).resolve().parents[1] / "gemini")
if _GEMINI_TESTS not in sys.path:
    sys.path.insert(0, _GEMINI_TESTS)

#: A fixed OAuth token long enough for the simulator's records to keep its last four characters.
TOKEN = "ya29.test-token-0001"

ProviderFactory = Callable[..., Awaitable[VertexProvider]]


@pytest.fixture(autouse=True)
def _no_google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a project, location or credentials from the machine."""
    for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_APPLICATION_CREDENTIALS",
                 "GOOGLE_API_KEY", "GEMINI_API_KEY", "VERTEX_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_provider(sim: ProviderSimulator, build_provider: Callable[..., Awaitable[Any]]) -> ProviderFactory:
    """Build initialised providers pointed at the simulator (on the ``transport`` fixture's transport).

    Defaults: project ``test-project`` in ``us-central1`` with a fixed access token; pass ``api_key=...`` and
    ``vertex_access_token=None``/``project=None``/``vertex_location=None`` for express mode.
    """

    async def factory(**config: Any) -> VertexProvider:
        settings = {"base_url": sim.vertex_base_url, "model": "gemini-2.5-flash", "project": "test-project",
                    "vertex_location": "us-central1", "vertex_access_token": TOKEN, **config}
        settings = {k: v for k, v in settings.items() if v is not None}
        provider: VertexProvider = await build_provider(VertexProvider, **settings)
        return provider

    return factory
