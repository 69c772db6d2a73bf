"""Batch files: reading input lines (OpenAI Batch or simple form) and writing OpenAI Batch output lines.

Input, one JSON object per line, in either form::

    {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "...", "messages": [...]}}
    {"id": "r2", "prompt": "Summarise ...", "system": "...", "temperature": 0.2}
    {"id": "r3", "messages": [...], "max_tokens": 100}

A simple line without ``id`` is named ``line-N`` (its 1-based line number), which stays stable across runs.
Output lines follow OpenAI's Batch output shape (``id``, ``custom_id``, ``response`` with ``status_code``,
``request_id`` and a ``chat.completion`` body, ``error``), plus a ``spoon_llm`` object with the provider that
answered, the cost, the fallback path and the attempts.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..types import LLMResponse

CHAT_URL = "/v1/chat/completions"
# Keys of a simple line that are not chat arguments.
_SIMPLE_KEYS = frozenset({"id", "custom_id", "messages", "prompt", "system", "model"})


@dataclass(slots=True)
class Job:
    """One request to run: its id, where it came from, and the arguments for ``LLMManager.chat``."""

    id: str
    line: int
    messages: list[Any] | None = None
    model: str | None = None
    kwargs: dict[str, Any] | None = None
    problem: str | None = None  # set when the line cannot be run; it is reported as a failed line


def _from_openai_batch(data: dict[str, Any], number: int) -> Job:
    job = Job(id=str(data["custom_id"]), line=number)
    url = data.get("url", CHAT_URL)
    if url != CHAT_URL:
        job.problem = f"url {url!r} is not supported; batch lines must target {CHAT_URL}"
        return job
    if str(data.get("method", "POST")).upper() != "POST":
        job.problem = "method must be POST"
        return job
    body = data.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        job.problem = "body.messages must be a non-empty list"
        return job
    kwargs = {k: v for k, v in body.items() if k not in ("model", "messages", "stream", "stream_options")}
    if "max_completion_tokens" in kwargs and "max_tokens" not in kwargs:
        kwargs["max_tokens"] = kwargs.pop("max_completion_tokens")
    job.messages, job.model, job.kwargs = body["messages"], body.get("model"), kwargs
    return job


def _from_simple(data: dict[str, Any], number: int) -> Job:
    raw_id = data.get("id")
    job = Job(id=str(raw_id) if raw_id is not None else f"line-{number}", line=number)
    messages = data.get("messages")
    prompt = data.get("prompt")
    if messages is None and isinstance(prompt, str) and prompt:
        messages = [{"role": "user", "content": prompt}]
    if not isinstance(messages, list) or not messages:
        job.problem = "a line needs 'messages' (a non-empty list) or 'prompt' (a non-empty string)"
        return job
    system = data.get("system")
    if isinstance(system, str) and system:
        messages = [{"role": "system", "content": system}, *messages]
    tags = data.get("tags")
    if tags is not None and not (isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())):
        job.problem = "'tags' must be an object of strings, e.g. {\"team\": \"research\"}"
        return job
    job.messages, job.model = messages, data.get("model")
    job.kwargs = {k: v for k, v in data.items() if k not in _SIMPLE_KEYS}
    return job


def parse_line(text: str, number: int) -> Job | None:
    """The job a line describes (``None`` for a blank line); a malformed line becomes a job with a problem."""
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        return Job(id=f"line-{number}", line=number, problem=f"not JSON: {exc}")
    if not isinstance(data, dict):
        return Job(id=f"line-{number}", line=number, problem="a line must be a JSON object")
    if "custom_id" in data:
        return _from_openai_batch(data, number)
    return _from_simple(data, number)


def read_jobs(path: Path) -> Iterator[Job]:
    """The jobs of an input file, one line at a time (the file is never held in memory)."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:  # that line fails, the others run
                yield Job(id=f"line-{number}", line=number, problem="the line is not UTF-8 text")
                continue
            job = parse_line(text, number)
            if job is not None:
                yield job


def count_lines(path: Path) -> int:
    """Non-blank lines of ``path``, read in blocks (for the progress total)."""
    count = 0
    with path.open("rb") as data:
        for line in data:
            if line.strip():
                count += 1
    return count


def _scan(path: Path, drop_failed: bool) -> tuple[set[str], int, bool]:
    """Ids of the complete lines worth keeping, how many of them failed, and whether any line must go."""
    done: set[str] = set()
    failed = 0
    rewrite = False
    with path.open("rb") as data:
        for line in data:
            if not line.strip():
                continue
            record = _record(line, drop_failed)
            if record is None:
                rewrite = True
            else:
                done.add(str(record.get("custom_id")))
                failed += record.get("error") is not None
    return done, failed, rewrite


def _record(line: bytes, drop_failed: bool) -> dict[str, Any] | None:
    """A complete output line worth keeping, else ``None``."""
    if not line.endswith(b"\n"):
        return None  # cut short: the process died while writing it
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or (drop_failed and record.get("error") is not None):
        return None
    return record


def finished_ids(path: Path, *, drop_failed: bool) -> tuple[set[str], int]:
    """Ids already written to an output file, which a resumed run skips, and how many of those lines failed.

    A last line cut short (the process was killed mid-write) is removed. With ``drop_failed`` the failed lines
    are removed too, so their ids run again. Both passes stream the file; a rewrite replaces it atomically.
    """
    if not path.exists():
        return set(), 0
    done, failed, rewrite = _scan(path, drop_failed)
    if rewrite:
        temporary = path.with_name(path.name + ".tmp")
        with path.open("rb") as source, temporary.open("wb") as target:
            for line in source:
                if line.strip() and _record(line, drop_failed) is not None:
                    target.write(line)
        os.replace(temporary, path)
    return done, failed


def success_line(job: Job, response: LLMResponse) -> dict[str, Any]:
    """The output object of an answered request, in OpenAI's Batch output shape."""
    usage = response.usage
    message: dict[str, Any] = {"role": "assistant", "content": response.content or None}
    if response.tool_calls:
        message["tool_calls"] = [call.model_dump(exclude={"provider_data"}) for call in response.tool_calls]
    body = {
        "id": response.request_id or f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": int(response.timestamp),
        "model": response.model,
        "choices": [{"index": 0, "message": message, "finish_reason": response.finish_reason}],
        "usage": {
            "prompt_tokens": usage.input_tokens if usage else 0,
            "completion_tokens": usage.output_tokens if usage else 0,
            "total_tokens": usage.total_tokens if usage else 0,
        },
    }
    return {
        "id": f"batch_req_{secrets.token_hex(12)}",
        "custom_id": job.id,
        "response": {"status_code": 200, "request_id": response.request_id, "body": body},
        "error": None,
        "spoon_llm": {
            "provider": response.provider,
            "deployment": response.deployment,
            "cost": response.cost.total_cost if response.cost and not response.cost.unpriced else None,
            "fallback_path": response.fallback_path,
            "attempts": len(response.attempts),
        },
    }


def error_line(job: Job, exc: BaseException | None) -> dict[str, Any]:
    """The output object of a failed request: ``error`` names the typed error; ``response`` the HTTP status."""
    if exc is None:
        code, message, status, request_id, provider = "invalid_line", job.problem or "", None, None, None
    else:
        code = type(exc).__name__
        message = " ".join(str(exc).split())
        status = getattr(exc, "status_code", None)
        request_id = getattr(exc, "request_id", None)
        provider = getattr(exc, "provider", None)
    response = None
    if status is not None:
        response = {"status_code": status, "request_id": request_id,
                    "body": {"error": {"message": message, "type": code, "code": None}}}
    return {
        "id": f"batch_req_{secrets.token_hex(12)}",
        "custom_id": job.id,
        "response": response,
        "error": {"code": code, "message": message, "line": job.line},
        "spoon_llm": {"provider": provider},
    }
