"""Anthropic (Claude) provider: the Messages API over our native client or the official ``anthropic`` SDK.

The wire mapping lives in pure modules shared by every transport: :mod:`._convert` (our request -> JSON body),
:mod:`._decode` (JSON body / SSE events -> our response), :mod:`._errors` (error bodies and SDK exceptions ->
our error tree); streams are framed by the shared :func:`spoon_llm.providers._sse_stream.sse_stream` loop.
:mod:`._transport` holds the native and SDK transports, :mod:`._provider` the provider.
"""

from ._provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
