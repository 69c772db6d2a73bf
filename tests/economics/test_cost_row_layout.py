"""The cost row is built as a plain tuple on the request path and read by position; its layout is declared once
(``UsageRow``). These tests check that every builder and reader agrees with it, field by field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import pytest

from spoon_llm.costs import CostTracker, UsageRecord, UsageRow
from spoon_llm.manager import LLMManager
from spoon_llm.middleware import CostMiddleware
from spoon_llm.pricing import PriceBook
from spoon_llm.testing import ProviderSimulator, Reply, Usage


def test_the_layout_is_the_record_s_fields_in_order() -> None:
    assert UsageRow._fields == tuple(f.name for f in fields(UsageRecord))


def test_to_row_and_from_row_follow_the_layout() -> None:
    record = UsageRecord(ts=1.5, provider="p", model="m", deployment="d", key_alias="k", provider_type="openai",
                         operation="embed", request_id="r", tags={"team": "a"}, input_tokens=1, output_tokens=2,
                         cached_input_tokens=3, cache_write_tokens=4, reasoning_tokens=5, cost=0.25,
                         currency="EUR", unpriced=True, source="s", success=False)
    row = record.to_row()
    named = UsageRow(*row)
    expected = record.to_dict() | {"tags": (("team", "a"),)}
    assert named._asdict() == expected
    assert UsageRecord.from_row(row) == record
    assert UsageRecord.row_dict(row) == record.to_dict()


@pytest.mark.parametrize("with_usage", [True, False])
async def test_the_middleware_builds_rows_in_the_layout(
        sim: ProviderSimulator, make_manager: Callable[..., LLMManager], with_usage: bool) -> None:
    usage = Usage(input_tokens=1000, output_tokens=200, cached_tokens=400) if with_usage else None
    sim.script("openai", Reply(text="ok", usage=usage))
    tracker = CostTracker()
    manager = make_manager({"openai": {"model": "gpt-4o"}}, middleware=[CostMiddleware(tracker, PriceBook())])
    try:
        response = await manager.chat("hi", tags={"user": "ann"})
    finally:
        await manager.cleanup()
    (row,) = tracker._records  # the literal the request path built
    assert len(row) == len(UsageRow._fields)
    named = UsageRow(*row)
    assert (named.provider, named.model, named.deployment, named.operation, named.tags, named.success) == (
        "openai", "gpt-4o", "openai", "chat", (("user", "ann"),), True)
    assert named.provider_type == "openai" and isinstance(named.request_id, str) and named.request_id
    assert response.cost is not None and named.cost == response.cost.total_cost
    assert (named.currency, named.unpriced, named.source) == (response.cost.currency, response.cost.unpriced,
                                                              response.cost.source)
    if with_usage:
        assert (named.input_tokens, named.output_tokens, named.cached_input_tokens) == (1000, 200, 400)
    (record,) = tracker.records
    assert record.tags == {"user": "ann"} and record.cost == named.cost
