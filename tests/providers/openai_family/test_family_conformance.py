"""Conformance: every recorded Mistral, Groq, xAI and Cerebras interaction replays through our providers, on both
transports (``native`` and ``sdk``), and matches the file's ``expected``; the request we sent matches the recorded
body up to the differences listed (with their reason) in ``KNOWN_REQUEST_DIFFERENCES``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _family_conformance import case_files, check_request, run_case
from _openai_compat_helpers import call_from_recorded

from spoon_llm.providers.cerebras import CerebrasProvider
from spoon_llm.providers.groq import GroqProvider
from spoon_llm.providers.mistral import MistralProvider
from spoon_llm.providers.xai import XAIProvider
from spoon_llm.testing import ConformanceCase, ProviderSimulator

FOLDERS = ("mistral", "groq", "xai", "cerebras")
PROVIDERS: dict[str, type[Any]] = {"mistral": MistralProvider, "groq": GroqProvider, "xai": XAIProvider,
                                   "cerebras": CerebrasProvider}
KEYS = {"mistral": "mistral-test-key-0001", "groq": "gsk_test_key_0002", "xai": "xai-test-key-0003",
        "cerebras": "csk-test-key-0004"}

#: Request-body differences the API would care about, per file, with the reason. Anything else fails.
KNOWN_REQUEST_DIFFERENCES: dict[str, tuple[list[str], str]] = {}


@pytest.mark.conformance
@pytest.mark.parametrize("transport", ["native", "sdk"])
@pytest.mark.parametrize("case_file", case_files(FOLDERS))
async def test_conformance(case_file: Path, sim: ProviderSimulator, transport: str) -> None:
    case = ConformanceCase.from_file(case_file)
    call = call_from_recorded(case.request)
    provider = PROVIDERS[case.provider]()
    await provider.initialize({"api_key": KEYS[case.provider], "transport": transport,
                               "base_url": sim.compatible_base_url(case.provider)})
    sim.replay(case)
    try:
        await run_case(case, provider, call)
    finally:
        await provider.cleanup()
    check_request(case, sim, case.provider, KNOWN_REQUEST_DIFFERENCES.get(case.name, ([], ""))[0])
