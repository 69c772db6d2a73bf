"""No key escapes, on either transport, when an upstream echoes it: not in our errors, their ``__cause__``
chain, formatted tracebacks, ``error.body``, nor any library's DEBUG log (SDKs, httpx2/httpcore2, aiohttp).

The upstream is a raw 127.0.0.1 server that answers 401 and 500 with the key (and a masked form of it) in the
body and in a header.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from spoon_llm.errors import LLMError

from ._raw import Raw, RawServer
from ._vendors import VENDORS

#: Long, vendor-shaped keys nobody else uses; each test checks the key and its last 8 characters.
KEYS = {"openai": "sk-proj-EchoedKey0000000000000000000Zq81Lm27",
        "anthropic": "sk-ant-api03-EchoedKey00000000000000Yw55Kp90",
        "gemini": "AIzaSyEchoedKey000000000000000Rt64Hn18"}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[_Collect]:
    handler = _Collect()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    async with RawServer() as raw:
        yield raw


async def failed_call(provider: Any, settings: dict[str, Any], mode: str) -> LLMError:
    """Initialise ``provider``, make one call that must fail (``mode``: ``chat`` or ``stream``), close it: the error."""
    await provider.initialize(settings)
    try:
        with pytest.raises(LLMError) as caught:
            if mode == "stream":
                async for _ in provider.chat_stream("hi"):
                    pass
            else:
                await provider.chat("hi")
    finally:
        await provider.cleanup()
    return caught.value


def _everything(error: BaseException) -> str:
    parts = [str(error), repr(error), "".join(traceback.format_exception(error)),
             repr(getattr(error, "body", None)), repr(getattr(error, "headers", None))]
    pending, seen = [error.__cause__, error.__context__], {id(error)}
    while pending:  # the whole chain, both links of each exception
        link = pending.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        parts += [str(link), repr(link), repr(getattr(link, "body", None))]
        pending += [link.__cause__, link.__context__]
    return "\n".join(parts)


@pytest.mark.parametrize("status", [401, 500])
@pytest.mark.parametrize("mode", ["chat", "stream"])
@pytest.mark.parametrize("transport", ["sdk", "native"])
@pytest.mark.parametrize("vendor_name", list(VENDORS))
async def test_an_echoed_key_appears_nowhere(server: RawServer, debug_logs: _Collect, vendor_name: str,
                                             transport: str, mode: str, status: int) -> None:
    vendor = VENDORS[vendor_name]
    key = KEYS[vendor_name]
    echo = f"Incorrect API key provided: {key} (also known as ...{key[-8:]})"
    body = {"error": {"message": echo, "type": "authentication_error", "code": status, "status": "UNAUTHENTICATED",
                      "key": key}, "type": "error"}
    server.answer = Raw(status=status, headers={"x-echo": key, "www-authenticate": f"Bearer {key}"},
                        parts=[json.dumps(body).encode()])
    error = await failed_call(vendor.provider_class()(), {"api_key": key, "base_url": server.url + vendor.path_suffix,
                                                           "model": "m", "transport": transport}, mode)
    seen = _everything(error) + "\n" + "\n".join(debug_logs.lines)
    assert any("Incorrect API key" in line or "status" in line.lower() for line in [seen])
    assert key not in seen
    assert key[-8:] not in seen
