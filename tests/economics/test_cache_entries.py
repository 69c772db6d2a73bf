"""What the cache stores for an answer: the JSON pydantic writes for it, whichever way the entry was written."""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import datetime, timezone
from enum import Enum

import orjson
import pytest

from spoon_llm.cache.middleware import _ANSWER_FIELDS, _PER_REQUEST, _PLAIN_ANSWERS, _entry
from spoon_llm.types import (
    Attempt,
    CostInfo,
    EmbeddingResponse,
    FunctionCall,
    LLMResponse,
    Message,
    TokenUsage,
    ToolCall,
)


class Colour(Enum):
    RED = "red"


PRICED = CostInfo(input_cost=1e-5, output_cost=2e-5, total_cost=3e-5, source="config")
ANSWERS = {
    "text": LLMResponse(content="hi", provider="p", model="m", finish_reason="stop", cost=PRICED,
                        usage=TokenUsage(input_tokens=9, output_tokens=12), request_id="r", duration=0.5,
                        deployment="d", attempts=[Attempt("p", "m", "d")], fallback_path=["d"]),
    "plain metadata": LLMResponse(reasoning="because", refusal=None, usage=TokenUsage(raw={"prompt_tokens": 9}),
                                  metadata={"nan": float("nan"), "nested": {"a": [1, 2.5, None, True]},
                                            "pair": (1, 2), "colour": Colour.RED, "uni": "h\u00e9 \U0001f600"}),
    "unpriced": LLMResponse(content="x", cost=CostInfo(unpriced=True)),
    "no usage": LLMResponse(content="x", usage=None),
    # What orjson would write otherwise than pydantic, or not at all: pydantic writes these entries.
    "datetime": LLMResponse(metadata={"when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)}),
    "int keys": LLMResponse(metadata={"bias": {11: 5}}),
    "big int": LLMResponse(metadata={"big": 2**70}),
    "dict subclass": LLMResponse(metadata={"ordered": OrderedDict(b=1, a=2)}),
    "bytes": LLMResponse(metadata={"raw": b"abc"}),
    "tool calls": LLMResponse(tool_calls=[ToolCall(id="c1", function=FunctionCall(name="f", arguments="{}"))]),
    "conversation": LLMResponse(content="done", messages=[Message.user("hi"), Message.assistant("done")]),
    "embedding": EmbeddingResponse(embeddings=[[0.5, 0.25]], provider="p", model="e", cost=PRICED,
                                   usage=TokenUsage(input_tokens=2)),
}


def test_the_models_still_match_the_fields_written_out() -> None:
    # A field added to LLMResponse or TokenUsage turns the written-out path off: this says it is still on.
    assert _PLAIN_ANSWERS


@pytest.mark.parametrize("compact", [False, True], ids=["shared layout", "compact layout"])
@pytest.mark.parametrize("name", list(ANSWERS))
def test_an_entry_holds_what_pydantic_writes_for_the_answer(name: str, compact: bool) -> None:
    response = ANSWERS[name]
    data, kind, price, stored = orjson.loads(_entry(response, compact))
    if isinstance(data, list):  # the compact layout, as the cache reads it back
        assert compact
        data = dict(zip(_ANSWER_FIELDS, data, strict=True))
    assert data == json.loads(response.__pydantic_serializer__.to_json(response, exclude=_PER_REQUEST))
    assert kind == type(response).__name__ and isinstance(stored, float)
    assert price == (None if response.cost is None or response.cost.unpriced else response.cost.total_cost)
    restored = type(response).model_validate(data)
    assert not set(restored.model_fields_set) & _PER_REQUEST
