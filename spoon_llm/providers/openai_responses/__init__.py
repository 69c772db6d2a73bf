"""OpenAI Responses API provider (``openai_responses``): ``POST /v1/responses``, also Azure's ``/openai/v1``.

The wire mapping lives in pure modules shared by every transport: :mod:`._convert` (our request -> JSON body)
and :mod:`._decode` (response object / typed SSE events -> our response); errors go through the OpenAI error
mapping. :mod:`._provider` holds both transports (native aiohttp, and the ``openai`` SDK's
``responses.create``).
"""

from ._provider import OpenAIResponsesProvider

__all__ = ["OpenAIResponsesProvider"]
