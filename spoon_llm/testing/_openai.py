"""OpenAI-compatible wire format (OpenAI, OpenRouter, DeepSeek, vLLM): requests in, JSON/SSE out.

One module serves three flavours that differ in small ways seen in real recordings: OpenRouter
adds ``provider``, ``native_finish_reason``, ``reasoning`` and cost fields, always sends usage in
streams and opens them with ``: OPENROUTER PROCESSING``; DeepSeek sends ``reasoning_content`` and
``prompt_cache_hit_tokens``, and puts usage on its last stream chunk.
"""

from __future__ import annotations

import math
from typing import Any

from . import _answers, _json
from ._answers import Answer, Prompt
from ._faults import Fault
from ._http import JSON, JSON_UTF8, SSE, Ctx, Response, sse_event
from ._routes import Route

_DONE = b"data: [DONE]\n\n"
_OPENROUTER_COMMENT = b": OPENROUTER PROCESSING\n\n"
_FINGERPRINT = "fp_5im0la7ed"

MODELS = {
    "openai": (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-5",
        "o3-mini",
        "gpt-3.5-turbo-instruct",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ),
    "openrouter": (
        "openai/gpt-4o-mini",
        "anthropic/claude-sonnet-4.5",
        "google/gemini-2.5-flash",
        "deepseek/deepseek-chat-v3-0324",
        "meta-llama/llama-3.3-70b-instruct",
    ),
    "deepseek": ("deepseek-chat", "deepseek-reasoner"),
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        )
    return ""


def model_and_stream(body: Any) -> tuple[str | None, bool]:
    """Return the model named in a request body and whether a stream was asked for."""
    if not isinstance(body, dict):
        return None, False
    model = body.get("model")
    return (model if isinstance(model, str) else None), body.get("stream") is True


def chat_prompt(body: Any) -> Prompt:
    """Extract a :class:`Prompt` from a ``/chat/completions`` request body."""
    prompt = Prompt()
    if not isinstance(body, dict):
        return prompt
    prompt.model = str(body.get("model") or "")
    prompt.stream = body.get("stream") is True
    chars = 0
    user_text = ""
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        text = _text(message.get("content"))
        chars += len(text)
        if message.get("role") == "user":
            user_text = text
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                chars += len(str(call["function"].get("arguments") or ""))
    prompt.user_text = user_text
    prompt.input_chars = chars
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            prompt.tools[fn["name"]] = fn.get("parameters") or {}
    for fn in body.get("functions") or ():  # legacy function calling
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            prompt.tools[fn["name"]] = fn.get("parameters") or {}
    choice = body.get("tool_choice")
    if choice == "required" and prompt.tools:
        prompt.forced_tool = next(iter(prompt.tools))
    elif isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
        if isinstance(name, str):
            prompt.forced_tool = name
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_object":
            prompt.json_mode = True
        elif fmt.get("type") == "json_schema":
            prompt.json_mode = True
            spec = fmt.get("json_schema")
            prompt.json_schema = spec.get("schema") if isinstance(spec, dict) else None
    options = body.get("stream_options")
    prompt.include_usage = isinstance(options, dict) and options.get("include_usage") is True
    n = body.get("n")
    prompt.n = n if isinstance(n, int) and 1 <= n <= 16 else 1
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    prompt.max_tokens = limit if isinstance(limit, int) else None
    return prompt


def completion_prompt(body: Any) -> Prompt:
    """Extract a :class:`Prompt` from a legacy ``/completions`` request body."""
    prompt = Prompt()
    if not isinstance(body, dict):
        return prompt
    prompt.model = str(body.get("model") or "")
    prompt.stream = body.get("stream") is True
    raw = body.get("prompt")
    if isinstance(raw, list):
        raw = next((p for p in raw if isinstance(p, str)), "")
    prompt.user_text = raw if isinstance(raw, str) else ""
    prompt.input_chars = len(prompt.user_text)
    options = body.get("stream_options")
    prompt.include_usage = isinstance(options, dict) and options.get("include_usage") is True
    limit = body.get("max_tokens")
    prompt.max_tokens = limit if isinstance(limit, int) else None
    return prompt


def _usage(answer: Answer, flavor: str) -> dict[str, Any]:
    pt, ct = answer.input_tokens, answer.output_tokens
    usage: dict[str, Any] = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
    if flavor == "openai":
        usage["prompt_tokens_details"] = {"cached_tokens": answer.cached_tokens, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": answer.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    elif flavor == "openrouter":
        prompt_cost = round(pt * 1.5e-7, 10)
        completion_cost = round(ct * 6e-7, 10)
        usage["cost"] = round(prompt_cost + completion_cost, 10)
        usage["is_byok"] = False
        usage["prompt_tokens_details"] = {
            "cached_tokens": answer.cached_tokens,
            "cache_write_tokens": answer.cache_write_tokens,
            "audio_tokens": 0,
            "video_tokens": 0,
        }
        usage["cost_details"] = {
            "upstream_inference_cost": usage["cost"],
            "upstream_inference_prompt_cost": prompt_cost,
            "upstream_inference_completions_cost": completion_cost,
        }
        usage["completion_tokens_details"] = {
            "reasoning_tokens": answer.reasoning_tokens,
            "image_tokens": 0,
            "audio_tokens": 0,
        }
    else:  # deepseek
        usage["prompt_tokens_details"] = {"cached_tokens": answer.cached_tokens}
        if answer.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": answer.reasoning_tokens}
        usage["prompt_cache_hit_tokens"] = answer.cached_tokens
        usage["prompt_cache_miss_tokens"] = max(0, pt - answer.cached_tokens)
    return usage


def _message(answer: Answer, flavor: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    if flavor == "openai":
        message["content"] = answer.text
        message["refusal"] = None
        message["annotations"] = []
    elif flavor == "openrouter":
        message["content"] = answer.text if answer.text is not None else ""
        message["refusal"] = None
        message["reasoning"] = answer.reasoning
    else:
        message["content"] = answer.text if answer.text is not None else ""
        if answer.reasoning is not None:
            message["reasoning_content"] = answer.reasoning
    if answer.tool_calls:
        calls = []
        for i, call in enumerate(answer.tool_calls):
            item: dict[str, Any] = {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            if flavor != "openai":
                item["index"] = i
            calls.append(item)
        message["tool_calls"] = calls
    return message


def _envelope(ctx: Ctx, model: str, flavor: str, obj: str) -> dict[str, Any]:
    if flavor == "openrouter":
        return {
            "id": f"gen-{ctx.created}-{ctx.token}",
            "object": obj,
            "created": ctx.created,
            "model": model,
            "provider": "Simulator",
        }
    if flavor == "deepseek":
        return {"id": ctx.token, "object": obj, "created": ctx.created, "model": model}
    return {"id": f"chatcmpl-{ctx.token}", "object": obj, "created": ctx.created, "model": model}


def render_chat(answer: Answer, prompt: Prompt, flavor: str, ctx: Ctx) -> bytes:
    """Render a non-streaming chat completion."""
    body = _envelope(ctx, prompt.model, flavor, "chat.completion")
    message = _message(answer, flavor)
    choices = []
    for index in range(prompt.n):
        choice: dict[str, Any] = {
            "index": index,
            "message": message,
            "logprobs": None,
            "finish_reason": answer.finish,
        }
        if flavor == "openrouter":
            choice["native_finish_reason"] = answer.finish
        choices.append(choice)
    body["choices"] = choices
    body["usage"] = _usage(answer, flavor)
    if flavor == "openai":
        body["service_tier"] = "default"
    body["system_fingerprint"] = _FINGERPRINT
    return _json.dumps(body)


def _pieces(text: str, parts: int = 3) -> list[str]:
    if not text:
        return []
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def render_chat_stream(answer: Answer, prompt: Prompt, flavor: str, ctx: Ctx) -> list[bytes]:
    """Render a streaming chat completion as SSE frames, ending with ``[DONE]``."""
    head = _envelope(ctx, prompt.model, flavor, "chat.completion.chunk")
    if flavor == "openai":
        head["service_tier"] = "default"
    if flavor != "openrouter":
        head["system_fingerprint"] = _FINGERPRINT
    usage_on_chunks = flavor == "openai" and prompt.include_usage
    frames: list[bytes] = [_OPENROUTER_COMMENT] if flavor == "openrouter" else []

    def emit(index: int, delta: dict[str, Any], finish: str | None = None) -> None:
        choice: dict[str, Any] = {"index": index, "delta": delta}
        if flavor == "openrouter":
            choice["finish_reason"] = finish
            choice["native_finish_reason"] = finish
        else:
            choice["logprobs"] = None
            choice["finish_reason"] = finish
        chunk = dict(head)
        chunk["choices"] = [choice]
        if usage_on_chunks:
            chunk["usage"] = None
        frames.append(sse_event(_json.dumps_str(chunk)))

    text_chunks = answer.text_chunks()
    for index in range(prompt.n):
        first: dict[str, Any] = {"role": "assistant", "content": "" if answer.text is not None else None}
        if flavor == "openai":
            first["refusal"] = None
        emit(index, first)
        if answer.reasoning:
            key = "reasoning" if flavor == "openrouter" else "reasoning_content"
            if flavor != "openai":  # OpenAI never exposes reasoning text in chat completions
                for piece in _answers.split_chunks(answer.reasoning):
                    content = "" if flavor == "openrouter" else None
                    emit(index, {"role": "assistant", "content": content, key: piece})
        for piece in text_chunks:
            delta: dict[str, Any] = {"content": piece}
            if flavor == "openrouter":
                delta["role"] = "assistant"
            emit(index, delta)
        for i, call in enumerate(answer.tool_calls):
            header = {
                "index": i,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            emit(index, {"tool_calls": [header]})
            for fragment in _pieces(call.arguments_json):
                emit(index, {"tool_calls": [{"index": i, "function": {"arguments": fragment}}]})
        if flavor == "deepseek":
            last = dict(head)
            last["choices"] = [
                {"index": index, "delta": {"content": ""}, "logprobs": None, "finish_reason": answer.finish}
            ]
            if index == prompt.n - 1:
                last["usage"] = _usage(answer, flavor)
            frames.append(sse_event(_json.dumps_str(last)))
        else:
            emit(index, {}, answer.finish)
    if usage_on_chunks or flavor == "openrouter":
        chunk = dict(head)
        chunk["choices"] = []
        chunk["usage"] = _usage(answer, flavor)
        frames.append(sse_event(_json.dumps_str(chunk)))
    frames.append(_DONE)
    return frames


def render_completion(answer: Answer, prompt: Prompt, ctx: Ctx) -> bytes:
    """Render a non-streaming legacy text completion."""
    body = {
        "id": f"cmpl-{ctx.token}",
        "object": "text_completion",
        "created": ctx.created,
        "model": prompt.model,
        "choices": [{"text": answer.text or "", "index": 0, "logprobs": None, "finish_reason": answer.finish}],
        "usage": {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens,
        },
    }
    return _json.dumps(body)


def render_completion_stream(answer: Answer, prompt: Prompt, ctx: Ctx) -> list[bytes]:
    """Render a streaming legacy text completion."""
    frames: list[bytes] = []
    base = {"id": f"cmpl-{ctx.token}", "object": "text_completion", "created": ctx.created}

    def emit(text: str, finish: str | None) -> None:
        chunk = dict(base)
        chunk["choices"] = [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]
        chunk["model"] = prompt.model
        frames.append(sse_event(_json.dumps_str(chunk)))

    for piece in answer.text_chunks():
        emit(piece, None)
    emit("", answer.finish)
    if prompt.include_usage:
        chunk: dict[str, Any] = dict(base)
        chunk["model"] = prompt.model
        chunk["choices"] = []
        chunk["usage"] = {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens,
        }
        frames.append(sse_event(_json.dumps_str(chunk)))
    frames.append(_DONE)
    return frames


def _embedding_inputs(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        if raw and all(isinstance(x, int) for x in raw):  # one token array
            return [" ".join(map(str, raw))]
        return [x if isinstance(x, str) else " ".join(map(str, x)) if isinstance(x, list) else "" for x in raw]
    return [""]


def render_embeddings(body: Any) -> bytes:
    """Render ``/embeddings``: deterministic vectors, float or base64, honouring ``dimensions``."""
    body = body if isinstance(body, dict) else {}
    model = str(body.get("model") or "text-embedding-3-small")
    dims = body.get("dimensions")
    if not isinstance(dims, int) or dims < 1:
        dims = 3072 if "large" in model else 1536
    b64 = body.get("encoding_format") == "base64"
    texts = _embedding_inputs(body.get("input"))
    data = []
    tokens = 0
    for index, text in enumerate(texts):
        vector = _answers.embedding(text, dims)
        value: Any = _answers.embedding_base64(vector) if b64 else vector
        data.append({"object": "embedding", "index": index, "embedding": value})
        tokens += max(1, _answers.estimate_tokens(len(text)))
    out = {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return _json.dumps(out)


def _model_obj(name: str, flavor: str) -> dict[str, Any]:
    owner = {"openai": "system", "openrouter": name.partition("/")[0], "deepseek": "deepseek"}[flavor]
    return {"id": name, "object": "model", "created": 1715367049, "owned_by": owner}


def render_models(flavor: str) -> bytes:
    """Render ``GET /models``."""
    return _json.dumps({"object": "list", "data": [_model_obj(m, flavor) for m in MODELS[flavor]]})


def respond(route: Route, body: Any, prompt: Prompt | None, answer: Answer | None, ctx: Ctx) -> Response:
    """Build the successful response for ``route`` (``answer`` is set for chat/completion)."""
    flavor = route.vendor
    op = route.op
    if op == "chat" and prompt is not None and answer is not None:
        if prompt.stream:
            return Response(200, [("content-type", SSE)], events=render_chat_stream(answer, prompt, flavor, ctx))
        return Response(200, [("content-type", JSON)], render_chat(answer, prompt, flavor, ctx))
    if op == "completion" and prompt is not None and answer is not None:
        if prompt.stream:
            return Response(200, [("content-type", SSE)], events=render_completion_stream(answer, prompt, ctx))
        return Response(200, [("content-type", JSON)], render_completion(answer, prompt, ctx))
    if op == "embeddings":
        return Response(200, [("content-type", JSON)], render_embeddings(body))
    if op == "models":
        return Response(200, [("content-type", JSON)], render_models(flavor))
    if op == "model":
        return Response(200, [("content-type", JSON)], _json.dumps(_model_obj(route.model or "", flavor)))
    if op == "health":
        return Response(200, [])
    return error_response(route, 404, Fault(status=404, message=f"Unknown route {op}"), None, 0)


_OPENAI_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: (
        "Incorrect API key provided: sk-simu*****ated. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: (
        "Project `proj_simulator` does not have access to model `{model}`",
        "invalid_request_error",
        "model_not_found",
    ),
    404: (
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    408: ("Request timed out.", "invalid_request_error", None),
    409: ("Conflict with the current state of the resource.", "invalid_request_error", None),
    422: ("Unprocessable entity.", "invalid_request_error", None),
    429: (
        "Rate limit reached for {model} in organization org-simulator on requests per min (RPM): "
        "Limit 500, Used 500, Requested 1. Please try again in {retry}. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error processing your request. Sorry about that! You can retry your request, "
        "or contact us through our help center at help.openai.com if you keep seeing this error.",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}

_DEEPSEEK_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", "invalid_request_error"),
    401: ("Authentication Fails, Your api key: ****ated is invalid", "authentication_error", "invalid_request_error"),
    402: ("Insufficient Balance", "unknown_error", "invalid_request_error"),
    404: ("Model Not Exist", "invalid_request_error", "invalid_request_error"),
    422: ("Invalid parameters.", "invalid_request_error", "invalid_request_error"),
    429: ("Rate Limit Reached", "rate_limit_error", "rate_limit_error"),
    500: ("Server Error", "api_error", "internal_error"),
    503: ("Server Overloaded", "api_error", "server_overloaded"),
}


def format_retry_after(seconds: float) -> str:
    """Format ``retry-after`` as whole seconds (rounded up), as HTTP requires."""
    return str(max(0, math.ceil(seconds)))


def error_response(route: Route, status: int, fault: Fault, model: str | None, input_tokens: int) -> Response:
    """Build an error in the flavour's own body shape, with ``retry-after(-ms)`` when asked."""
    flavor = route.vendor
    name = model or "unknown"
    retry = fault.retry_after
    param: str | None = None
    if fault.context_limit is not None:
        limit = fault.context_limit
        used = max(input_tokens, limit + 1)
        if flavor == "openrouter":
            message = (
                f"This endpoint's maximum context length is {limit} tokens. However, you requested about "
                f"{used} tokens ({used} of text input). Please reduce the length of either one, or use the "
                '"middle-out" transform to compress your prompt automatically.'
            )
        elif flavor == "deepseek":
            message = (
                f"This model's maximum context length is {limit} tokens. However, you requested {used} tokens "
                f"({used} in the messages, 0 in the completion). Please reduce the length of the messages or "
                "completion."
            )
        else:
            message = (
                f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
                f"{used} tokens. Please reduce the length of the messages."
            )
        err_type: str = "invalid_request_error"
        code: str | None = "context_length_exceeded"
        param = "messages"
    else:
        table = _DEEPSEEK_ERRORS if flavor == "deepseek" else _OPENAI_ERRORS
        default = table.get(status) or _OPENAI_ERRORS.get(status)
        if default is None:
            kind = "server_error" if status >= 500 else "invalid_request_error"
            default = (f"Simulated error {status}.", kind, None)
        retry_text = f"{retry:g}s" if retry is not None else "1s"
        message = default[0].format(model=name, retry=retry_text)
        err_type, code = default[1], default[2]
    if fault.message is not None:
        message = fault.message
    if fault.error_type is not None:
        err_type = fault.error_type
    if fault.code is not None:
        code = fault.code
    if flavor == "openrouter":
        error: dict[str, Any] = {"message": message, "code": status}
        if fault.code is not None:
            error["metadata"] = {"code": fault.code}
        body: dict[str, Any] = {"error": error, "user_id": "user_simulator"}
    else:
        body = {"error": {"message": message, "type": err_type, "param": param, "code": code}}
    headers = [("content-type", JSON_UTF8 if status in (401, 404, 429) else JSON)]
    if retry is not None:
        headers.append(("retry-after", format_retry_after(retry)))
        headers.append(("retry-after-ms", str(max(0, round(retry * 1000)))))
    return Response(status, headers, _json.dumps(body))
