"""Anthropic (Claude) provider: Messages API over the official ``anthropic`` SDK.

The wire mapping lives in pure modules shared by every transport: :mod:`._convert` (our request -> JSON body),
:mod:`._decode` (JSON body / SSE events -> our response), :mod:`._errors` (error bodies and SDK exceptions ->
our error tree) and :mod:`._sse` (SSE framing). :mod:`._provider` is the SDK transport.
"""

from ._provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
