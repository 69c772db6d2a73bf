"""DebugLogger: the explicit API, bounded history, bodies off by default, structured records."""

import json
import logging

from spoon_llm.errors import RateLimitError
from spoon_llm.monitoring import DebugLogger, JsonFormatter, get_debug_logger, reset_monitoring
from spoon_llm.types import LLMResponse, TokenUsage

SECRET = "sk-proj-abcdefghijklmnopqrstuvwx"


def records(caplog, event=None):
    found = [r for r in caplog.records if r.name == "spoon_llm.monitoring"]
    return [r for r in found if event is None or r.event == event]


def test_request_response_and_history():
    debug = DebugLogger()
    rid = debug.log_request("openai", "chat", {"model": "gpt-4o", "temperature": 0.2, "messages": [{"content": "hi"}]})
    assert [r["request_id"] for r in debug.get_active_requests()] == [rid]
    debug.log_response(rid, LLMResponse(content="hello", model="gpt-4o", usage=TokenUsage(input_tokens=1,
                                                                                          output_tokens=2)), 0.25)
    assert debug.get_active_requests() == []
    [entry] = debug.get_request_history()
    assert entry["status"] == "success" and entry["duration"] == 0.25 and entry["model"] == "gpt-4o"
    assert entry["usage"]["output_tokens"] == 2
    assert entry["params"] == {"model": "gpt-4o", "temperature": 0.2}  # the prompt is off by default
    assert entry["request"] is None and entry["response"] is None


def test_bodies_when_enabled_are_redacted_and_truncated():
    debug = DebugLogger(max_body_chars=40)
    debug.enable_request_logging()
    debug.enable_response_logging()
    rid = debug.log_request("openai", "chat", {"messages": [{"content": "x" * 100 + SECRET}], "api_key": SECRET})
    debug.log_response(rid, "y" * 100)
    [entry] = debug.get_request_history()
    assert entry["request"].endswith("more chars]") and entry["response"].startswith("y" * 40)
    assert entry["params"] == {"api_key": "***"}
    assert SECRET not in json.dumps(entry)


def test_errors_fallbacks_filters_limits_and_clear():
    debug = DebugLogger(max_history=3)
    for i in range(5):
        rid = debug.log_request("openai" if i % 2 else "anthropic", "chat")
        debug.log_fallback("openai", "anthropic", RateLimitError("busy"), request_id=rid)
        debug.log_error(rid, RateLimitError(f"busy {SECRET}", provider="openai"))
    history = debug.get_request_history()
    assert len(history) == 3 and all(h["status"] == "error" for h in history)
    assert history[-1]["error_type"] == "RateLimitError" and SECRET not in history[-1]["error"]
    assert history[-1]["fallbacks"][0]["to"] == "anthropic"
    assert [h["provider"] for h in debug.get_request_history("openai")] == ["openai"]
    assert len(debug.get_request_history(limit=2)) == 2
    debug.clear_history()
    assert debug.get_request_history() == []


def test_active_requests_are_bounded():
    debug = DebugLogger(max_active=2)
    ids = [debug.log_request("p", "chat") for _ in range(4)]
    assert [r["request_id"] for r in debug.get_active_requests()] == ids[2:]


def test_structured_records_and_levels(caplog):
    debug = DebugLogger()
    debug.set_log_level("DEBUG")
    caplog.set_level(logging.DEBUG, logger="spoon_llm.monitoring")
    rid = debug.log_request("openai", "chat", {"model": "m"})
    debug.log_error(rid, RateLimitError("slow", provider="openai", model="m"))
    debug.log_fallback("openai", "anthropic", "rate limited")
    [failed] = records(caplog, "llm_call_failed")
    assert failed.levelno == logging.ERROR
    assert (failed.provider, failed.model, failed.error_type, failed.retry_count) == ("openai", "m", "RateLimitError",
                                                                                      0)
    assert failed.getMessage().startswith("llm_call_failed ")
    [switched] = records(caplog, "backend_switched")
    assert (switched.from_provider, switched.to_provider) == ("openai", "anthropic")
    line = json.loads(JsonFormatter().format(failed))
    assert line["event"] == "llm_call_failed" and line["error_type"] == "RateLimitError"
    debug.set_log_level(logging.WARNING)
    caplog.clear()
    debug.log_request("openai", "chat")
    assert records(caplog) == []  # DEBUG records are not even built


def test_streams_and_cost_via_events(caplog):
    from spoon_llm.events import Event

    caplog.set_level(logging.DEBUG, logger="spoon_llm.monitoring")
    debug = DebugLogger()
    usage = TokenUsage(input_tokens=3, output_tokens=4)
    common = {"provider": "openai", "model": "m", "deployment": "d"}
    debug.on_event(Event("request_start", "r1", "chat_stream", data={"route": "fast"}, tags={"team": "a"}))
    debug.on_event(Event("attempt_start", "r1", "chat_stream", attempt=1, **common))
    debug.on_event(Event("first_token", "r1", "chat_stream", latency=0.05, **common))
    debug.on_event(Event("attempt_end", "r1", "chat_stream", attempt=1, success=True, usage=usage, **common))
    assert debug.get_active_requests()[0]["time_to_first_token"] == 0.05
    debug.on_event(Event("request_end", "r1", "chat_stream", success=True, usage=usage, chunk_count=9, attempt=1,
                         latency=0.3, cost=0.01, **common))
    [entry] = debug.get_request_history()
    assert entry["stream"] and entry["chunk_count"] == 9 and entry["route"] == "fast" and entry["cost"] == 0.01
    [cost] = records(caplog, "cost_tracked")
    assert (cost.cost, cost.provider, cost.tags) == (0.01, "openai", {"team": "a"})
    debug.on_event(Event("circuit_change", "", deployment="d", data={"old": "closed", "new": "open"}))
    debug.on_event(Event("budget_alert", "", data={"budget": "monthly", "spent": 9.0, "limit": 10.0}))
    assert records(caplog, "circuit_changed")[0].new == "open"
    assert records(caplog, "budget_alert")[0].budget == "monthly"


def test_process_wide_logger_is_resettable():
    first = get_debug_logger()
    assert get_debug_logger() is first
    reset_monitoring()
    assert get_debug_logger() is not first
