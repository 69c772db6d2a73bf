"""Conformance: every recorded Azure OpenAI interaction replays through the ``azure`` provider, on both transports
(``native`` and ``AsyncAzureOpenAI``), and matches the file's ``expected``.

Each file is replayed with the recording's deployment (the model name, as most clients do) and ``api-version``; the
request must reach the same path and query, and its body must equal the recorded one (``model`` compared only where
the recording has it: on deployment paths it is informational and several clients leave it out).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from _azure_test_helpers import AZURE_KEY
from _family_conformance import as_message_objects, case_files, check_request, consume, run_case
from _openai_compat_helpers import call_from_recorded

from spoon_llm.providers.azure import AzureOpenAIProvider
from spoon_llm.testing import ConformanceCase, ProviderSimulator

#: Request-body differences the API would care about, per file, with the reason. Anything else fails.
KNOWN_REQUEST_DIFFERENCES: dict[str, tuple[list[str], str]] = {}


@pytest.mark.conformance
@pytest.mark.parametrize("transport", ["native", "sdk"])
@pytest.mark.parametrize("case_file", case_files(("azure",)))
async def test_conformance(case_file: Path, sim: ProviderSimulator, transport: str) -> None:
    case = ConformanceCase.from_file(case_file)
    recorded = urlsplit(case.request["path"])
    deployment = recorded.path.split("/")[3]
    version = parse_qs(recorded.query)["api-version"][0]
    call = call_from_recorded(case.request)
    model = call.kwargs.pop("model", None) or deployment
    provider = AzureOpenAIProvider()
    await provider.initialize({"api_key": AZURE_KEY, "base_url": sim.azure_endpoint, "api_version": version,
                               "azure_deployments": {model: deployment}, "transport": transport})
    sim.replay(case)
    try:
        call.kwargs["model"] = model
        await run_case(case, provider, call)
    finally:
        await provider.cleanup()
    sent = sim.last_request("azure")
    assert sent.path == recorded.path
    assert sent.query == {"api-version": version}
    assert sent.headers.get("api-key") and "authorization" not in sent.headers
    check_request(case, sim, "azure", KNOWN_REQUEST_DIFFERENCES.get(case.name, ([], ""))[0], ignore=("model",))


@pytest.mark.conformance
@pytest.mark.parametrize("transport", ["native", "sdk"])
@pytest.mark.parametrize("case_file", [p for p in case_files(("azure",))
                                       if p.values[0] is None or p.values[0].name.startswith(("chat", "tools"))])
async def test_conformance_request_from_message_objects(case_file: Path, sim: ProviderSimulator,
                                                        transport: str) -> None:
    """The same recorded requests, rebuilt from ``Message`` objects: our Message -> wire mapping must agree."""
    case = ConformanceCase.from_file(case_file)
    recorded = urlsplit(case.request["path"])
    call = call_from_recorded(case.request)
    messages = as_message_objects(call.args[0])
    model = call.kwargs.pop("model", None) or recorded.path.split("/")[3]
    provider = AzureOpenAIProvider()
    await provider.initialize({"api_key": AZURE_KEY, "base_url": sim.azure_endpoint, "transport": transport,
                               "api_version": parse_qs(recorded.query)["api-version"][0]})
    sim.replay(case)
    try:
        method = getattr(provider, call.method)
        if call.method.endswith("_stream"):
            await consume(method(messages, model=model, **call.kwargs))
        else:
            await method(messages, model=model, **call.kwargs)
    finally:
        await provider.cleanup()
    assert sim.last_request("azure").path == recorded.path
    check_request(case, sim, "azure", KNOWN_REQUEST_DIFFERENCES.get(case.name, ([], ""))[0], ignore=("model",))
