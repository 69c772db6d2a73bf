"""Valid answers of each vendor (whole and streamed) as bytes, and the broken variants the fault tests send."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["VENDORS", "Vendor", "sse"]


def sse(*events: Any, names: list[str] | None = None) -> bytes:
    """Events (dicts or raw bytes) framed as SSE, with ``event:`` lines when ``names`` are given."""
    out = []
    for i, event in enumerate(events):
        data = event if isinstance(event, bytes) else json.dumps(event, ensure_ascii=False).encode()
        head = b"event: %s\n" % names[i].encode() if names else b""
        out.append(head + b"data: " + data + b"\n\n")
    return b"".join(out)


@dataclass(frozen=True)
class Vendor:
    """One vendor: provider class, how to point it at a server, its answers and its broken answers."""

    name: str
    module: str
    cls: str
    key: str
    path_suffix: str
    answer: dict[str, Any]
    stream_events: list[dict[str, Any]]
    event_names: list[str] | None
    done: bytes
    error_object: dict[str, Any]
    wrong_types: dict[str, Any]
    wrong_stream_event: dict[str, Any]

    def provider_class(self) -> type[Any]:
        import importlib

        return getattr(importlib.import_module(self.module), self.cls)  # type: ignore[no-any-return]

    def stream_body(self) -> bytes:
        return sse(*self.stream_events, names=self.event_names) + self.done

    def stream_event(self, data: bytes, name: str | None = None) -> bytes:
        """One event with raw ``data`` (named like the vendor's first content event when it names events)."""
        if self.event_names is not None:
            return b"event: " + (name or "content_block_delta").encode() + b"\ndata: " + data + b"\n\n"
        return b"data: " + data + b"\n\n"


OPENAI = Vendor(
    name="openai", module="spoon_llm.providers.openai", cls="OpenAIProvider", key="sk-test-reliability-0001",
    path_suffix="/v1",
    answer={"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello there"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
    stream_events=[
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hel"}, "finish_reason": None}]},
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "lo é 雪"}, "finish_reason": None}]},
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
    ],
    event_names=None,
    done=b"data: [DONE]\n\n",
    error_object={"error": {"message": "upstream overloaded", "type": "server_error", "code": "overloaded"}},
    wrong_types={"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": "oops"},
    wrong_stream_event={"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                        "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": 5}]},
)

ANTHROPIC = Vendor(
    name="anthropic", module="spoon_llm.providers.anthropic", cls="AnthropicProvider", key="sk-ant-test-reliab-0001",
    path_suffix="",
    answer={"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": "hello there"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 2}},
    stream_events=[
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                              "content": [], "stop_reason": None,
                                              "usage": {"input_tokens": 3, "output_tokens": 0}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hello é 雪"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    ],
    event_names=["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                 "message_delta", "message_stop"],
    done=b"",
    error_object={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    wrong_types={"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                 "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                 "usage": {"input_tokens": "3", "output_tokens": 2}},
    wrong_stream_event={"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}},
)

GEMINI = Vendor(
    name="gemini", module="spoon_llm.providers.gemini", cls="GeminiProvider", key="AIzaSyTEST-reliability-0000001",
    path_suffix="",
    answer={"candidates": [{"content": {"role": "model", "parts": [{"text": "hello there"}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
            "modelVersion": "m"},
    stream_events=[
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "hel"}]}, "index": 0}],
         "modelVersion": "m"},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "lo é 雪"}]}, "finishReason": "STOP",
                         "index": 0}],
         "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
         "modelVersion": "m"},
    ],
    event_names=None,
    done=b"",
    error_object={"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
    wrong_types={"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
                 "promptFeedback": [1]},
    wrong_stream_event={"candidates": [{"content": {"role": "model", "parts": [{"text": 5}]}, "index": 0}]},
)

VENDORS = {v.name: v for v in (OPENAI, ANTHROPIC, GEMINI)}
