"""The OpenAI Responses provider chains only scrubbed causes (``safe_cause``), like the other providers.

Same upstream as ``test_secrets_wire``: a raw 127.0.0.1 server answering 401/500 with the key echoed in the body
and headers, DEBUG logging on for every logger, both transports, whole and streamed answers.
"""

from __future__ import annotations

import json

import pytest

from spoon_llm.providers.openai_responses import OpenAIResponsesProvider

from ._raw import Raw, RawServer
from .test_secrets_wire import _Collect, _everything, debug_logs, failed_call, server  # noqa: F401 - fixtures

KEY = "sk-proj-EchoedResponsesKey0000000000000Vb47Qx63"


@pytest.mark.parametrize("status", [401, 500])
@pytest.mark.parametrize("mode", ["chat", "stream"])
@pytest.mark.parametrize("transport", ["sdk", "native"])
async def test_an_echoed_key_appears_nowhere(server: RawServer, debug_logs: _Collect,  # noqa: F811
                                             transport: str, mode: str, status: int) -> None:
    echo = f"Incorrect API key provided: {KEY} (also known as ...{KEY[-8:]})"
    body = {"error": {"message": echo, "type": "invalid_request_error", "code": "invalid_api_key", "key": KEY}}
    server.answer = Raw(status=status, headers={"x-echo": KEY, "www-authenticate": f"Bearer {KEY}"},
                        parts=[json.dumps(body).encode()])
    error = await failed_call(OpenAIResponsesProvider(), {"api_key": KEY, "base_url": server.url + "/v1", "model": "m",
                                                          "transport": transport}, mode)
    seen = _everything(error) + "\n" + "\n".join(debug_logs.lines)
    assert KEY not in seen
    assert KEY[-8:] not in seen
