"""Conformance: every recorded Mistral, Groq, xAI and Cerebras interaction replays through our providers, on both
transports (``native`` and ``sdk``), and matches the file's ``expected``; the request we sent matches the recorded
body up to the differences listed (with their reason) in ``KNOWN_REQUEST_DIFFERENCES``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _family_conformance import as_message_objects, case_files, check_request, consume, run_case
from _openai_compat_helpers import call_from_recorded

from spoon_llm.errors import LLMError
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


#: Extra differences when the same request is rebuilt from ``Message`` objects (our schema is not the wire's).
KNOWN_MESSAGE_OBJECT_DIFFERENCES: dict[str, tuple[list[str], str]] = {}


@pytest.mark.conformance
@pytest.mark.parametrize("transport", ["native", "sdk"])
@pytest.mark.parametrize("case_file", [p for p in case_files(FOLDERS)
                                       if p.values[0] is None or p.values[0].name.startswith(("chat", "tools"))])
async def test_conformance_request_from_message_objects(case_file: Path, sim: ProviderSimulator,
                                                        transport: str) -> None:
    """The same recorded requests, rebuilt from ``Message`` objects: our Message -> wire mapping must agree."""
    case = ConformanceCase.from_file(case_file)
    call = call_from_recorded(case.request)
    messages = as_message_objects(call.args[0])
    provider = PROVIDERS[case.provider]()
    await provider.initialize({"api_key": KEYS[case.provider], "transport": transport,
                               "base_url": sim.compatible_base_url(case.provider)})
    sim.replay(case)
    try:
        method = getattr(provider, call.method)
        if call.method.endswith("_stream"):
            await consume(method(messages, **call.kwargs))
        else:
            try:
                await method(messages, **call.kwargs)
            except LLMError:
                pass  # recorded errors: only the request matters here
    finally:
        await provider.cleanup()
    known = KNOWN_REQUEST_DIFFERENCES.get(case.name, ([], ""))[0] + \
        KNOWN_MESSAGE_OBJECT_DIFFERENCES.get(case.name, ([], ""))[0]
    check_request(case, sim, case.provider, known)
