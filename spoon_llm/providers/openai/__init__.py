"""OpenAI and the OpenAI-compatible family (Chat Completions, legacy completions, embeddings).

``spoon_llm.providers.openai`` was a module holding ``OpenAIProvider``; it is now this package, which exports the
same name, so ``from spoon_llm.providers.openai import OpenAIProvider`` and the registry's
``spoon_llm.providers.openai:OpenAIProvider`` keep working. Like ``anthropic/`` and ``gemini/``, the wire mapping
lives in pure modules every transport shares: :mod:`._dialect` (vendor dialects, per-model rules, finish reasons),
:mod:`._convert` (our request -> JSON body), :mod:`._decode` (JSON answer -> our response), :mod:`._stream`
(stream chunks -> our chunks) and :mod:`._errors` (error bodies and SDK exceptions -> our error tree).
:mod:`._transport` moves bytes (native client or the ``openai`` SDK), :mod:`._client` sets a deployment up
on the shared ``DualTransportProvider`` skeleton and carries its requests,
:mod:`._provider` is :class:`OpenAICompatibleProvider` (the base of every OpenAI-compatible vendor) and
:mod:`._openai` the ``openai`` provider itself.
"""

from ._openai import OpenAIProvider
from ._provider import OpenAICompatibleProvider

__all__ = ["OpenAICompatibleProvider", "OpenAIProvider"]
