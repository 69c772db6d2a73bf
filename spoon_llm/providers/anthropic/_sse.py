"""Server-sent events for the Anthropic transports: the shared parser of :mod:`spoon_llm.transport._sse`.

Decoding the stream ourselves (rather than through the SDK's typed event objects) keeps SDK objects off the hot
path. The provider uses :class:`~spoon_llm.transport.SSEParser` (data as bytes, for one ``loads`` per event);
``SSEReader`` is the same parser handing data on as text.
"""

from __future__ import annotations

from ...transport._sse import TextSSEParser as SSEReader

__all__ = ["SSEReader"]
