"""Gemini provider: the Gemini API over ``google-genai``'s async client.

The wire mapping lives in pure modules shared by every transport: :mod:`._convert` (our request -> REST JSON),
:mod:`._schema` (JSON Schema -> Gemini's schema subset), :mod:`._decode` (REST JSON / stream chunks -> our
response) and :mod:`._errors` (error bodies and SDK exceptions -> our error tree). :mod:`._transport` moves the
JSON through the SDK client; :mod:`._provider` ties them together.
"""

from ._provider import GeminiProvider

__all__ = ["GeminiProvider"]
