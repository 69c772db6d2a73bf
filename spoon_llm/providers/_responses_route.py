"""``api = "responses"``: chat and streams of an OpenAI-family deployment through the Responses API.

A provider class that mixes :class:`ResponsesRoute` in before its OpenAI-compatible base sends chat (and streams,
and completions of chat models) through an :class:`~spoon_llm.providers.openai_responses.OpenAIResponsesProvider`
built from the deployment's configuration, exactly as the ``openai_responses`` provider sends it (answers then
name ``openai_responses`` as their provider); embeddings, model listing and health checks stay where they are.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Coroutine
from typing import TYPE_CHECKING, Any

from ..types import LLMResponse, LLMResponseChunk

if TYPE_CHECKING:
    from ..config.models import ProviderConfig

__all__ = ["ResponsesRoute"]


class ResponsesRoute:
    """Mixin for :class:`~spoon_llm.providers.openai.OpenAICompatibleProvider` subclasses."""

    #: The Responses API deployment that serves chat when ``api = "responses"`` (``None``: Chat Completions).
    _responses: Any = None
    config: ProviderConfig

    def _responses_config(self) -> ProviderConfig | None:
        """The configuration of the Responses API deployment, ``None`` when chat stays on Chat Completions."""
        return self.config if self.config.api == "responses" else None

    async def _setup(self) -> None:
        await super()._setup()  # type: ignore[misc]
        try:
            config = self._responses_config()
            if config is None:
                return
            from .openai_responses import OpenAIResponsesProvider  # its own mapping and transports, loaded on use

            responses = OpenAIResponsesProvider()
            await responses.initialize(config)
        except BaseException:
            await super()._close()  # type: ignore[misc]  # a half-built deployment must not leave a pool open
            raise
        self._responses = responses

    async def _close(self) -> None:
        responses, self._responses = self._responses, None
        try:
            if responses is not None:
                await responses.cleanup()
        finally:
            await super()._close()  # type: ignore[misc]

    def chat(self, messages: Any, **kwargs: Any) -> Coroutine[Any, Any, LLMResponse]:
        """Send a conversation and return the complete answer (through the Responses API with ``api = "responses"``).

        The chosen route's own coroutine, not one awaiting it: a layer less on every wake-up of the request.
        """
        responses = self._responses
        if responses is not None:
            return self._responses_chat(responses, messages, kwargs)
        whole: Coroutine[Any, Any, LLMResponse] = super().chat(messages, **kwargs)  # type: ignore[misc]
        return whole

    async def _responses_chat(self, responses: Any, messages: Any, kwargs: dict[str, Any]) -> LLMResponse:
        answer: LLMResponse = await responses.chat(messages, **kwargs)
        finished: LLMResponse = self._finish(answer)  # type: ignore[attr-defined]
        return finished

    def _stream(self, messages: Any, **kwargs: Any) -> AsyncGenerator[LLMResponseChunk, None]:
        # The chosen route's own generator, not one wrapped around it: a layer less for every chunk. Both are
        # generators, so nothing runs (and nothing can fail) before the caller iterates.
        responses = self._responses
        stream: AsyncGenerator[LLMResponseChunk, None] = (
            super()._stream(messages, **kwargs)  # type: ignore[misc]
            if responses is None else responses.chat_stream(messages, **kwargs))
        return stream
