"""Gemini API (v1beta) wire format: requests in, JSON / CRLF-framed SSE out."""

from __future__ import annotations

import math
from typing import Any

from . import _answers, _json
from ._answers import Answer, Prompt
from ._faults import Fault
from ._http import Ctx, Response, sse_event
from ._routes import Route

JSON = "application/json; charset=UTF-8"
SSE = "text/event-stream"  # what the real API sends, also on errors to stream requests
FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}
_WORDS_PER_CHUNK = 4  # Gemini streams a few words per chunk, not one token

MODELS = (
    ("gemini-2.5-flash", "Gemini 2.5 Flash", 1_048_576, 65_536),
    ("gemini-2.5-pro", "Gemini 2.5 Pro", 1_048_576, 65_536),
    ("gemini-2.0-flash", "Gemini 2.0 Flash", 1_048_576, 8_192),
    ("gemini-embedding-001", "Gemini Embedding 001", 2_048, 1),
)


def _parts_text(parts: Any) -> tuple[str, int]:
    """Return (text of the non-thought text parts, characters of all parts)."""
    if not isinstance(parts, list):
        return "", 0
    texts: list[str] = []
    chars = 0
    for part in parts:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            chars += len(part["text"])
            if not part.get("thought"):
                texts.append(part["text"])
        elif "functionCall" in part or "functionResponse" in part:
            chars += len(_json.dumps_str(part))
    return " ".join(texts), chars


def bare_model(name: str | None) -> str | None:
    """Strip the ``models/`` prefix from a model name."""
    if name is not None and name.startswith("models/"):
        return name[7:]
    return name


def prompt_of(route: Route, body: Any) -> Prompt:
    """Extract a :class:`Prompt` from a ``generateContent`` / ``countTokens`` request body."""
    prompt = Prompt(model=bare_model(route.model) or "", stream=route.op == "stream_generate")
    if not isinstance(body, dict):
        return prompt
    if isinstance(body.get("generateContentRequest"), dict):  # countTokens' wrapped form
        body = body["generateContentRequest"]
    system = body.get("systemInstruction")
    chars = _parts_text(system.get("parts"))[1] if isinstance(system, dict) else 0
    for content in body.get("contents") or ():
        if not isinstance(content, dict):
            continue
        text, n = _parts_text(content.get("parts"))
        chars += n
        if content.get("role", "user") == "user" and text:
            prompt.user_text = text
    prompt.input_chars = chars
    for tool in body.get("tools") or ():
        for decl in (tool.get("functionDeclarations") or ()) if isinstance(tool, dict) else ():
            if isinstance(decl, dict) and isinstance(decl.get("name"), str):
                schema = decl.get("parametersJsonSchema") or decl.get("parameters") or {}
                prompt.tools[decl["name"]] = schema
    config = body.get("toolConfig")
    calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
    if isinstance(calling, dict) and calling.get("mode") == "ANY" and prompt.tools:
        allowed = calling.get("allowedFunctionNames")
        prompt.forced_tool = allowed[0] if isinstance(allowed, list) and allowed else next(iter(prompt.tools))
    gen = body.get("generationConfig")
    if isinstance(gen, dict):
        if gen.get("responseMimeType") == "application/json":
            prompt.json_mode = True
            prompt.json_schema = gen.get("responseJsonSchema") or gen.get("responseSchema")
        limit = gen.get("maxOutputTokens")
        prompt.max_tokens = limit if isinstance(limit, int) else None
        count = gen.get("candidateCount")
        prompt.n = count if isinstance(count, int) and 1 <= count <= 8 else 1
        thinking = gen.get("thinkingConfig")
        prompt.thinking = isinstance(thinking, dict) and thinking.get("includeThoughts") is True
    return prompt


def _usage(answer: Answer, *, final: bool = True) -> dict[str, Any]:
    prompt_tokens = answer.input_tokens
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
    if final:
        # candidatesTokenCount excludes thoughts; totalTokenCount includes them.
        usage["candidatesTokenCount"] = max(0, answer.output_tokens - answer.reasoning_tokens)
        usage["totalTokenCount"] = prompt_tokens + answer.output_tokens
    else:
        usage["totalTokenCount"] = prompt_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    if answer.cached_tokens:
        usage["cachedContentTokenCount"] = answer.cached_tokens
    if final and answer.reasoning_tokens:
        usage["thoughtsTokenCount"] = answer.reasoning_tokens
    return usage


def _call_part(call: _answers.AnswerCall) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": call.name, "args": call.arguments}
    if call.explicit_id:
        fn["id"] = call.id
    return {"functionCall": fn}


def _candidates(parts: list[dict[str, Any]], n: int, finish: str | None) -> list[dict[str, Any]]:
    out = []
    for index in range(n):
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = index
        out.append(candidate)
    return out


def render(answer: Answer, prompt: Prompt, ctx: Ctx) -> bytes:
    """Render a non-streaming ``generateContent`` answer."""
    parts: list[dict[str, Any]] = []
    if answer.reasoning is not None:
        parts.append({"text": answer.reasoning, "thought": True})
    if answer.text is not None and (answer.text or not answer.tool_calls):
        parts.append({"text": answer.text})
    parts.extend(_call_part(c) for c in answer.tool_calls)
    body = {
        "candidates": _candidates(parts, prompt.n, FINISH.get(answer.finish, answer.finish)),
        "usageMetadata": _usage(answer),
        "modelVersion": prompt.model,
        "responseId": ctx.token,
    }
    return _json.dumps(body)


def render_stream(answer: Answer, prompt: Prompt, ctx: Ctx) -> list[bytes]:
    """Render ``streamGenerateContent?alt=sse``: a few words per chunk, finish on the last one."""
    steps: list[list[dict[str, Any]]] = []
    if answer.reasoning is not None:
        steps.append([{"text": answer.reasoning, "thought": True}])
    pieces = answer.text_chunks()
    for i in range(0, len(pieces), _WORDS_PER_CHUNK):
        steps.append([{"text": "".join(pieces[i : i + _WORDS_PER_CHUNK])}])
    if answer.tool_calls:
        steps.append([_call_part(c) for c in answer.tool_calls])
    if not steps:
        steps.append([{"text": ""}])
    frames = []
    finish = FINISH.get(answer.finish, answer.finish)
    for i, parts in enumerate(steps):
        last = i == len(steps) - 1
        chunk = {
            "candidates": _candidates(parts, prompt.n, finish if last else None),
            "usageMetadata": _usage(answer, final=last),
            "modelVersion": prompt.model,
            "responseId": ctx.token,
        }
        frames.append(sse_event(_json.dumps_str(chunk), crlf=True))
    return frames


def _embed_one(request: Any, default_model: str) -> tuple[list[float], int]:
    request = request if isinstance(request, dict) else {}
    content = request.get("content")
    text = _parts_text(content.get("parts"))[0] if isinstance(content, dict) else ""
    dims = request.get("outputDimensionality")
    if not isinstance(dims, int) or dims < 1:
        model = bare_model(request.get("model")) or default_model
        dims = 3072 if model.startswith("gemini-embedding") else 768
    return _answers.embedding(text, dims), max(1, _answers.estimate_tokens(len(text)))


def _model(entry: tuple[str, str, int, int]) -> dict[str, Any]:
    embedding = entry[0].startswith("gemini-embedding")
    methods = (
        ["embedContent", "countTokens"] if embedding else ["generateContent", "countTokens", "createCachedContent"]
    )
    out: dict[str, Any] = {
        "name": f"models/{entry[0]}",
        "version": "001",
        "displayName": entry[1],
        "description": f"{entry[1]} (simulated)",
        "inputTokenLimit": entry[2],
        "outputTokenLimit": entry[3],
        "supportedGenerationMethods": methods,
    }
    if not embedding:
        out.update({"temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": True})
    return out


def respond(route: Route, body: Any, prompt: Prompt | None, answer: Answer | None, ctx: Ctx) -> Response:
    """Build the successful response for ``route`` (``answer`` is set for generate calls)."""
    op = route.op
    if op in ("generate", "stream_generate") and prompt is not None and answer is not None:
        if prompt.stream:
            return Response(200, [("content-type", SSE)], events=render_stream(answer, prompt, ctx))
        return Response(200, [("content-type", JSON)], render(answer, prompt, ctx))
    model = bare_model(route.model) or ""
    if op == "embed":
        values, _ = _embed_one(body, model)
        return Response(200, [("content-type", JSON)], _json.dumps({"embedding": {"values": values}}))
    if op == "batch_embed":
        requests = body.get("requests") if isinstance(body, dict) else None
        embeddings = [{"values": _embed_one(r, model)[0]} for r in (requests or [])]
        return Response(200, [("content-type", JSON)], _json.dumps({"embeddings": embeddings}))
    if op == "count_tokens":
        tokens = max(1, _answers.estimate_tokens(prompt_of(route, body).input_chars))
        out = {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
        return Response(200, [("content-type", JSON)], _json.dumps(out))
    if op == "models":
        return Response(200, [("content-type", JSON)], _json.dumps({"models": [_model(m) for m in MODELS]}))
    if op == "model":
        found = next((m for m in MODELS if m[0] == model), (model, model, 1_048_576, 65_536))
        return Response(200, [("content-type", JSON)], _json.dumps(_model(found)))
    return error_response(route, 404, Fault(status=404), model, 0)


_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
        "other valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: (
        "NOT_FOUND",
        "models/{model} is not found for API version {version}, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods.",
    ),
    409: ("ABORTED", "The operation was aborted."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    499: ("CANCELLED", "The operation was cancelled."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}

_METHODS = {
    "generate": "generateContent",
    "stream_generate": "generateContent",
    "embed": "embedContent",
    "batch_embed": "embedContent",
    "count_tokens": "countTokens",
}


def error_response(route: Route, status: int, fault: Fault, model: str | None, input_tokens: int) -> Response:
    """Build a Google RPC error body (``{"error":{"code","message","status"}}``)."""
    if fault.context_limit is not None:
        used = max(input_tokens, fault.context_limit + 1)
        rpc_status = "INVALID_ARGUMENT"
        message = (
            f"The input token count ({used}) exceeds the maximum number of tokens allowed ({fault.context_limit})."
        )
    else:
        default = _ERRORS.get(status) or (
            "INTERNAL" if status >= 500 else "FAILED_PRECONDITION",
            f"Simulated error {status}.",
        )
        rpc_status = default[0]
        message = default[1].format(
            model=bare_model(model) or "unknown",
            method=_METHODS.get(route.op, "generateContent"),
            version=route.version,
        )
    if fault.message is not None:
        message = fault.message
    if fault.error_type is not None:
        rpc_status = fault.error_type
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    headers = [("content-type", SSE if route.op == "stream_generate" else JSON)]
    if fault.retry_after is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{fault.retry_after:g}s"}
        ]
        headers.append(("retry-after", str(max(0, math.ceil(fault.retry_after)))))
    return Response(status, headers, _json.dumps({"error": error}))
