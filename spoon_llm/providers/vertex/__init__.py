"""Vertex AI provider: Gemini models on Google Cloud, through the Gemini provider's wire mapping.

:mod:`._provider` holds :class:`VertexProvider` (URLs, express mode, embeddings, the SDK client);
:mod:`._anthropic` :class:`VertexAnthropicProvider` (Claude models through the Anthropic provider's mapping);
:mod:`._credentials` what both share (project, location, endpoint, tokens);
:mod:`._auth` the OAuth bearer tokens (fixed, from a token provider, or Application Default Credentials).
"""

from ._anthropic import VertexAnthropicProvider
from ._auth import AccessToken, TokenProvider
from ._provider import VertexProvider

__all__ = ["AccessToken", "TokenProvider", "VertexAnthropicProvider", "VertexProvider"]
