"""Structured output: ``response_format=MyModel`` gives back ``response.parsed``, a validated ``MyModel``.

``response_format`` may be a pydantic model class, any type pydantic's ``TypeAdapter`` validates (``list[Item]``,
``Literal[...]``, a dataclass), or a bare JSON schema (``parsed`` is then the decoded JSON). Each vendor gets its
strongest mechanism (see :class:`OutputSchema`): OpenAI-compatible APIs ``json_schema`` with ``strict: true`` when
the schema allows it, Anthropic ``output_config.format`` (JSON by instruction for schemas it cannot express),
Gemini ``responseJsonSchema``, Bedrock ``outputConfig.textFormat``. The answer is always validated here, so the
parsed type is the same whichever provider answered through fallback.

An answer that does not validate raises :class:`~spoon_llm.errors.OutputValidationError` (raw text and errors);
``output_retries=N`` re-asks the model with the errors up to N times, each re-ask a full request through the chain:
its attempts appear in ``response.attempts`` (the failed one with ``error_type="OutputValidationError"``) and its
usage and cost are summed into the response. With ``chat_stream`` the final chunk carries ``parsed``.

Example::

    class City(BaseModel):
        name: str
        population: int

    response = await manager.chat("Largest city in Japan?", response_format=City, output_retries=1)
    city: City = response.parsed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._parse import parse_output
    from ._schema import OutputSchema

__all__ = ["OutputSchema", "parse_output"]

__getattr__, __dir__ = lazy_exports(__name__, globals(), {"OutputSchema": "._schema", "parse_output": "._parse"})
