"""pytest fixtures for the provider simulator (registered through the ``pytest11`` entry point).

Kept import-light: pytest loads this module in every run of a project that has spoon-llm
installed, so the simulator itself is imported only when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._simulator import ProviderSimulator


@pytest.fixture
def provider_simulator() -> Iterator[ProviderSimulator]:
    """A running :class:`~spoon_llm.testing.ProviderSimulator`, stopped after the test."""
    from ._simulator import ProviderSimulator

    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """The recorded-interaction corpus folder; skips the test when it is not available."""
    from ._replay import ENV_VAR, find_conformance_dir

    found = find_conformance_dir()
    if found is None:
        pytest.skip(
            f"conformance corpus not found: set {ENV_VAR} or place it at ../shared/conformance next to the repository"
        )
    return found
