"""Fixtures shared by the provider tests: one simulator per module, the transport to run on, a provider builder.

``transport`` runs every test that uses it (directly or through a vendor's ``make_provider``) on both transports,
``native`` and ``sdk``; a test that concerns one transport only overrides it with
``@pytest.mark.parametrize("transport", ["sdk"])``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from spoon_llm.testing import ProviderSimulator

Builder = Callable[..., Awaitable[Any]]


@pytest.fixture(scope="module")
def _module_sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture
def sim(_module_sim: ProviderSimulator) -> Iterator[ProviderSimulator]:
    """A running simulator (shared by the module), reset before and after each test."""
    _module_sim.reset()
    yield _module_sim
    _module_sim.reset()


@pytest.fixture(params=["native", "sdk"])
def transport(request: pytest.FixtureRequest) -> str:
    """The transport providers are built on."""
    return str(request.param)


@pytest.fixture
async def build_provider(transport: str) -> AsyncIterator[Builder]:
    """``await build_provider(ProviderClass, **config)``: initialised on ``transport``, closed after the test."""
    made: list[Any] = []

    async def build(cls: type[Any], **config: Any) -> Any:
        provider = cls()
        await provider.initialize({"transport": transport, **config})
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.cleanup()
