"""Each ``Event`` constructor builds with a positional literal: it must agree with the fields it means, by name."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest

from spoon_llm.errors import ProviderUnavailableError
from spoon_llm.events import Event
from spoon_llm.types import Attempt, TokenUsage

TARGET = SimpleNamespace(provider_name="openai", model="gpt-x", name="primary", key_alias="k1")
ERROR = ProviderUnavailableError("down", provider="openai")
USAGE = TokenUsage(input_tokens=3, output_tokens=4)
ATTEMPT = Attempt("openai", "gpt-y", "primary", "k1", None, None, 0.5, 0.25)
FAILED = Attempt("openai", "gpt-x", "primary", "k1", "ProviderUnavailableError", 503, 0.0, 0.1)
TAGS = {"team": "a"}

CASES: list[tuple[str, Event, dict[str, Any]]] = [
    ("request_start", Event.request_start("req-1", "chat", TAGS, "fast"),
     {"kind": "request_start", "request_id": "req-1", "operation": "chat", "tags": TAGS, "data": {"route": "fast"}}),
    ("attempt_start", Event.attempt_start("req-1", "chat", TARGET, None, 2, 0.5),
     {"kind": "attempt_start", "request_id": "req-1", "operation": "chat", "provider": "openai", "model": "gpt-x",
      "deployment": "primary", "key_alias": "k1", "attempt": 2, "waited": 0.5}),
    ("attempt_ok", Event.attempt_ok("req-1", "chat", TARGET, ATTEMPT, 1, USAGE),
     {"kind": "attempt_end", "request_id": "req-1", "operation": "chat", "provider": "openai", "model": "gpt-y",
      "deployment": "primary", "key_alias": "k1", "attempt": 1, "success": True, "latency": 0.25, "usage": USAGE}),
    ("attempt_failed", Event.attempt_failed("req-1", "chat", TARGET, "gpt-z", 1, ERROR, 0.1),
     {"kind": "attempt_end", "request_id": "req-1", "operation": "chat", "provider": "openai", "model": "gpt-z",
      "deployment": "primary", "key_alias": "k1", "attempt": 1, "success": False, "error": ERROR,
      "latency": 0.1}),
    ("next_step", Event.next_step("fallback", "req-1", "chat", TARGET, None, 1, ERROR),
     {"kind": "fallback", "request_id": "req-1", "operation": "chat", "provider": "openai", "model": "gpt-x",
      "deployment": "primary", "key_alias": "k1", "attempt": 1, "error": ERROR,
      "data": {"reason": "ProviderUnavailableError"}}),
    ("first_token", Event.first_token("req-1", "chat_stream", TARGET, "gpt-x", 0.2),
     {"kind": "first_token", "request_id": "req-1", "operation": "chat_stream", "provider": "openai",
      "model": "gpt-x", "deployment": "primary", "key_alias": "k1", "latency": 0.2}),
    ("request_ok", Event.request_ok("req-1", "chat", [FAILED, ATTEMPT], 1.5, USAGE, 0.01, "answer", TAGS, 7),
     {"kind": "request_end", "request_id": "req-1", "operation": "chat", "provider": "openai", "model": "gpt-y",
      "deployment": "primary", "key_alias": "k1", "attempt": 2, "success": True, "latency": 1.5, "usage": USAGE,
      "cost": 0.01, "chunk_count": 7, "response": "answer", "tags": TAGS, "data": {"attempts": [FAILED, ATTEMPT]}}),
    ("request_failed", Event.request_failed("req-1", "chat", [FAILED], 2.0, ERROR, TAGS),
     {"kind": "request_end", "request_id": "req-1", "operation": "chat", "attempt": 1, "success": False,
      "error": ERROR, "latency": 2.0, "tags": TAGS, "data": {"attempts": [FAILED]}}),
    ("request_cancelled", Event.request_failed("req-1", "chat_stream", [], 2.0, None, None, 3),
     {"kind": "request_end", "request_id": "req-1", "operation": "chat_stream", "attempt": 0, "success": False,
      "latency": 2.0, "chunk_count": 3, "data": {"attempts": [], "cancelled": True}}),
    ("circuit_change", Event.circuit_change("primary", "closed", "open"),
     {"kind": "circuit_change", "request_id": "", "deployment": "primary", "data": {"old": "closed", "new": "open"}}),
]


@pytest.mark.parametrize(("name", "built", "fields"), CASES, ids=[case[0] for case in CASES])
def test_each_constructor_fills_the_fields_it_names(name: str, built: Event, fields: dict[str, Any]) -> None:
    expected = Event(**fields)  # by keyword: every field not named keeps its default
    for field in dataclasses.fields(Event):
        if field.name != "timestamp":
            assert getattr(built, field.name) == getattr(expected, field.name), (name, field.name)
    assert built.timestamp > 0
