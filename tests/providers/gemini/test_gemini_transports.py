"""The Gemini transports as the shared request surface: paths in, the 200 body's bytes out, on all three paths."""

from __future__ import annotations

from typing import Any

import pytest

from spoon_llm.errors import ModelNotFoundError, ValidationError
from spoon_llm.providers.gemini import GeminiProvider
from spoon_llm.providers.gemini._transport import PublicSdkTransport
from spoon_llm.testing import Fault, ProviderSimulator, Reply
from spoon_llm.transport import loads

KEY = "AIzaSyTEST00000000000000000"
PATHS = pytest.mark.parametrize(("transport", "options"), [
    pytest.param("native", {}, id="native"), pytest.param("sdk", {}, id="raw"),
    pytest.param("sdk", {"gemini_sdk_api": "public"}, id="public")])


async def _provider(sim: ProviderSimulator, transport: str, options: dict[str, str]) -> GeminiProvider:
    provider = GeminiProvider()
    await provider.initialize({"api_key": KEY, "base_url": sim.gemini_base_url, "transport": transport,
                               "options": options})
    return provider


@PATHS
async def test_post_and_get_return_the_answer_bytes(sim: ProviderSimulator, transport: str,
                                                    options: dict[str, str]) -> None:
    provider = await _provider(sim, transport, options)
    try:
        sim.script("gemini", Reply(text="hello there"), times=1)
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        assert provider._transport is not None
        content, headers = await provider._transport.post("models/gemini-2.5-flash:generateContent", body,
                                                          "gemini-2.5-flash", None, None)
        data: Any = loads(content)
        assert data["candidates"][0]["content"]["parts"][0]["text"] == "hello there"
        model = loads(await provider._transport.get("models/gemini-2.5-flash", None, "gemini-2.5-flash"))
        assert model["name"] == "models/gemini-2.5-flash"
    finally:
        await provider.cleanup()


@PATHS
async def test_a_refused_call_raises_our_error(sim: ProviderSimulator, transport: str,
                                                             options: dict[str, str]) -> None:
    provider = await _provider(sim, transport, options)
    try:
        sim.fault("gemini", Fault.model_not_found(), endpoint="model")
        with pytest.raises(ModelNotFoundError):
            async with provider._sdk_errors("no-such-model"):
                assert provider._transport is not None
                await provider._transport.get("models/no-such-model", None, "no-such-model")
    finally:
        await provider.cleanup()


async def test_the_public_path_names_the_fix_for_a_call_it_lacks(sim: ProviderSimulator) -> None:
    provider = await _provider(sim, "sdk", {"gemini_sdk_api": "public"})
    try:
        assert isinstance(provider._transport, PublicSdkTransport)
        with pytest.raises(ValidationError, match="gemini_sdk_api"):
            await provider._transport.post("models/gemini-2.5-flash:predict", {"instances": []}, "gemini-2.5-flash",
                                           None, None)
    finally:
        await provider.cleanup()
