"""AWS Bedrock Runtime provider: Converse / ConverseStream and InvokeModel for Anthropic-format bodies.

The wire mapping lives in pure modules: :mod:`._convert` (our request -> Converse or InvokeModel JSON),
:mod:`._decode` (Converse JSON / stream events -> our response; Invoke reuses the Anthropic mapping),
:mod:`._errors` (Bedrock error types -> our tree), :mod:`._eventstream` (the binary event-stream framing),
:mod:`._sigv4` (request signing) and :mod:`._auth` (credentials and region). :mod:`._provider` moves the bytes.
"""

from ._provider import BedrockProvider

__all__ = ["BedrockProvider"]
