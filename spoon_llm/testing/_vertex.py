"""Vertex AI wire format: its resource paths and credentials; the bodies are the Gemini API's (see :mod:`._gemini`).

Paths, as google-genai (``vertexai=True``) and our native client send them (``{v}`` is ``v1`` or ``v1beta1``):

* ``/{v}/projects/{p}/locations/{l}/publishers/google/models/{m}:{method}`` with ``generateContent``,
  ``streamGenerateContent`` (``?alt=sse``), ``countTokens``, ``embedContent`` and ``predict`` (embeddings);
* the same without ``projects/{p}/locations/{l}/`` (express mode, an API key);
* ``GET /{v}/publishers/google/models/{m}`` (the model's description: health checks);
* Claude: ``/v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict`` (``:streamRawPredict``)
  and ``.../models/count-tokens:rawPredict``, with Anthropic's Messages bodies (vendor ``vertex_anthropic``; the
  model is in the path, ``anthropic_version`` in the body).

Every request must carry ``Authorization: Bearer <token>`` or an API key (``x-goog-api-key`` or ``?key=``);
one without is answered 401 ``UNAUTHENTICATED``, as Vertex AI does.
"""

from __future__ import annotations

from typing import Any

from . import _answers, _gemini, _json
from ._answers import Answer, Prompt
from ._faults import Fault
from ._http import Ctx, Response
from ._routes import CHAT, COUNT_TOKENS, EMBEDDINGS, MODEL, Route

VENDOR = "vertex"
#: Claude on Vertex AI: Anthropic's bodies and answers under Vertex's paths and auth.
ANTHROPIC_VENDOR = "vertex_anthropic"
_ANTHROPIC_METHODS = frozenset({"rawPredict", "streamRawPredict"})
_METHODS = {
    "generateContent": (CHAT, "generate"),
    "streamGenerateContent": (CHAT, "stream_generate"),
    "countTokens": (COUNT_TOKENS, "count_tokens"),
    "embedContent": (EMBEDDINGS, "embed"),
    "predict": (EMBEDDINGS, "predict"),
}


def route(path: str) -> Route | None:
    """The :class:`Route` of a Vertex AI path, or ``None``."""
    version, _, rest = path[1:].partition("/")
    if rest.startswith("projects/"):
        parts = rest.split("/", 4)  # projects, {p}, locations, {l}, publishers/...
        if len(parts) < 5 or parts[2] != "locations" or not parts[1] or not parts[3]:
            return None
        rest = parts[4]
    if rest.startswith("publishers/anthropic/models/"):
        return _anthropic_route(rest[28:], version)
    if not rest.startswith("publishers/google/models/"):
        return None
    name, sep, method = rest[25:].partition(":")
    if not name or "/" in name:
        return None
    if not sep:
        return Route(VENDOR, MODEL, "model", name, "GET", version)
    found = _METHODS.get(method)
    if found is None:
        return None
    return Route(VENDOR, found[0], found[1], name, "POST", version)


def _anthropic_route(rest: str, version: str) -> Route | None:
    name, _, method = rest.partition(":")
    if not name or "/" in name or method not in _ANTHROPIC_METHODS:
        return None
    if name == "count-tokens":
        return Route(ANTHROPIC_VENDOR, COUNT_TOKENS, "count_tokens", None, "POST", version)
    return Route(ANTHROPIC_VENDOR, CHAT, "messages", name, "POST", version)


def check(route: Route, query: str, headers: list[tuple[bytes, bytes]]) -> Response | None:
    """Vertex AI's 401 for a request carrying neither a bearer token nor an API key; ``None`` when it has one."""
    for name, value in headers:
        lname = name.lower()
        if lname == b"authorization" and value[:7].lower() == b"bearer " and value[7:].strip():
            return None
        if lname == b"x-goog-api-key" and value.strip():
            return None
    if query.startswith("key=") or "&key=" in query:
        return None
    message = ("Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
               "or other valid authentication credential.")
    return _gemini.error_response(route, 401, Fault(status=401, message=message), route.model, 0)


def respond(route: Route, body: Any, prompt: Prompt | None, answer: Answer | None, ctx: Ctx) -> Response:
    """The successful answer: Gemini's bodies, plus Vertex's ``embedContent`` and ``predict`` embeddings."""
    model = route.model or ""
    if route.op == "embed":  # one content per request, with usage
        content = body.get("content") if isinstance(body, dict) else None
        text = _gemini._parts_text(content.get("parts"))[0] if isinstance(content, dict) else ""
        config = body.get("embedContentConfig") if isinstance(body, dict) else None
        dims = config.get("outputDimensionality") if isinstance(config, dict) else None
        size = dims if isinstance(dims, int) and dims > 0 else 3072
        tokens = max(1, _answers.estimate_tokens(len(text)))
        out = {"embedding": {"values": _answers.embedding(text, size)},
               "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens}}
        return Response(200, [("content-type", _gemini.JSON)], _json.dumps(out))
    if route.op == "predict":
        instances = body.get("instances") if isinstance(body, dict) else None
        parameters = body.get("parameters") if isinstance(body, dict) else None
        dims = parameters.get("outputDimensionality") if isinstance(parameters, dict) else None
        size = dims if isinstance(dims, int) and dims > 0 else (3072 if "gemini" in model else 768)
        predictions = []
        for instance in instances or ():
            text = instance.get("content", "") if isinstance(instance, dict) else ""
            tokens = max(1, _answers.estimate_tokens(len(str(text))))
            predictions.append({"embeddings": {"values": _answers.embedding(str(text), size),
                                               "statistics": {"token_count": tokens, "truncated": False}}})
        return Response(200, [("content-type", _gemini.JSON)], _json.dumps({"predictions": predictions}))
    if route.op == "count_tokens":
        tokens = max(1, _answers.estimate_tokens(_gemini.prompt_of(route, body).input_chars))
        return Response(200, [("content-type", _gemini.JSON)],
                        _json.dumps({"totalTokens": tokens, "totalBillableCharacters": tokens * 4}))
    if route.op == "model":
        out = {"name": f"publishers/google/models/{model}", "versionId": "default",
               "openSourceCategory": "PROPRIETARY", "launchStage": "GA"}
        return Response(200, [("content-type", _gemini.JSON)], _json.dumps(out))
    return _gemini.respond(route, body, prompt, answer, ctx)
