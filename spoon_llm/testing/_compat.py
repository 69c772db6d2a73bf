"""OpenAI-compatible vendors the simulator serves under their own path prefix, in OpenAI's wire format.

Each vendor lives under ``/{vendor}`` followed by its own API root (``/groq/openai/v1/chat/completions``,
``/mistral/v1/chat/completions``, ``/perplexity/chat/completions``), so recorded answers replay to the right
vendor even where the real APIs share a path. Answers are OpenAI's, with each vendor's visible differences: Groq
streams put usage in the last chunk's ``x_groq`` object (unless ``stream_options.include_usage`` asked for the
OpenAI-style usage chunk), Mistral always closes a stream with usage on its last chunk.
"""

from __future__ import annotations

from typing import Any

from . import _json, _openai
from ._answers import Answer, Prompt
from ._http import SSE, Ctx, Response, sse_event
from ._routes import Route, openai_route

#: Vendors served under ``/{vendor}/...`` and the API root each one's base URL ends with.
VENDOR_ROOTS: dict[str, str] = {
    "mistral": "/v1",
    "groq": "/openai/v1",
    "xai": "/v1",
    "cerebras": "/v1",
    "together": "/v1",
    "fireworks": "/inference/v1",
    "perplexity": "",
    "lmstudio": "/v1",
    "llamacpp": "/v1",
    "sglang": "/v1",
    "tgi": "/v1",
}

_MODELS = {
    "mistral": ("mistral-small-latest", "mistral-large-latest", "magistral-medium-latest", "mistral-embed"),
    "groq": ("llama-3.3-70b-versatile", "openai/gpt-oss-120b", "qwen/qwen3-32b"),
    "xai": ("grok-3-mini", "grok-4"),
    "cerebras": ("llama-3.3-70b", "gpt-oss-120b"),
}


def route(path: str) -> Route | None:
    """The route of a ``/{vendor}/...`` path, or ``None`` when it is not one of :data:`VENDOR_ROOTS`."""
    vendor, _, rest = path[1:].partition("/")
    root = VENDOR_ROOTS.get(vendor)
    if root is None:
        return None
    rest = "/" + rest
    if root and rest.startswith(root + "/"):
        rest = rest[len(root):]
    return openai_route(vendor, rest)


def _as_openai(route: Route) -> Route:
    return route._replace(vendor="openai")


def respond(route: Route, body: Any, prompt: Prompt | None, answer: Answer | None, ctx: Ctx) -> Response:
    """OpenAI's answer, adjusted to the vendor (model list, Groq and Mistral stream usage)."""
    vendor = route.vendor
    if route.op == "models":
        models = _MODELS.get(vendor, ("local-model",))
        data = [{"id": m, "object": "model", "created": 1715367049, "owned_by": vendor} for m in models]
        return Response(200, [("content-type", "application/json")], _json.dumps({"object": "list", "data": data}))
    if route.op == "chat" and prompt is not None and answer is not None and prompt.stream and \
            vendor in ("groq", "mistral") and not prompt.include_usage:
        frames = _openai.render_chat_stream(answer, prompt, "openai", ctx)
        usage = {"prompt_tokens": answer.input_tokens, "completion_tokens": answer.output_tokens,
                 "total_tokens": answer.input_tokens + answer.output_tokens}
        last = _json.loads(frames[-2][len(b"data: "):].strip())  # the finish chunk, just before [DONE]
        if vendor == "groq":
            last["x_groq"] = {"id": f"req_{ctx.token}", "usage": usage}
        else:
            last["usage"] = usage
        frames[-2] = sse_event(_json.dumps_str(last))
        return Response(200, [("content-type", SSE)], events=frames)
    return _openai.respond(_as_openai(route), body, prompt, answer, ctx)
