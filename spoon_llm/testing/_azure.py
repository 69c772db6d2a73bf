"""Azure OpenAI in the simulator: its paths, its auth check, content-filter results and error bodies.

Paths (the endpoint is the simulator's root, as ``https://<resource>.openai.azure.com`` would be):
``/openai/deployments/{deployment}/chat/completions|completions|embeddings?api-version=...``, the v1 API's
``/openai/v1/chat/completions|embeddings|models`` and ``/openai/models?api-version=...``. A request needs an
``api-key`` header or an ``Authorization: Bearer`` token (else Azure's 401 body, ``code`` "401") and a deployment
path needs ``api-version`` (else Azure's 404). Answers are OpenAI's with Azure's additions: ``prompt_filter_results``
and per-choice ``content_filter_results``, and streams that open with an empty-``choices`` chunk (empty ``id`` and
``model``) carrying the prompt's filter results. ``Fault(status=400, code="content_filter")`` answers with Azure's
content-filter error (``innererror.content_filter_result`` names the category); 429s carry ``retry-after-ms``.
"""

from __future__ import annotations

from typing import Any

from . import _json, _openai
from ._answers import Answer, Prompt
from ._faults import Fault
from ._http import JSON, SSE, Ctx, Response, sse_event
from ._routes import CHAT, COMPLETION, EMBEDDINGS, MODELS, Route

_DEPLOYMENT_OPS = {
    "chat/completions": (CHAT, "chat"),
    "completions": (COMPLETION, "completion"),
    "embeddings": (EMBEDDINGS, "embeddings"),
}
_SAFE = {"filtered": False, "severity": "safe"}
_CATEGORIES = ("hate", "self_harm", "sexual", "violence")


def route(path: str) -> Route | None:
    """The route of an ``/openai/...`` path (``model`` carries the deployment of a deployment path)."""
    rest = path[len("/openai/"):]
    if rest.startswith("deployments/"):
        deployment, _, op = rest[len("deployments/"):].partition("/")
        found = _DEPLOYMENT_OPS.get(op)
        if not deployment or found is None:
            return None
        return Route("azure", found[0], found[1], None, "POST", "deployments/" + deployment)
    if rest == "models" or rest == "v1/models":
        return Route("azure", MODELS, "models", None, "GET")
    if rest.startswith("v1/"):
        found = _DEPLOYMENT_OPS.get(rest[3:])
        return Route("azure", found[0], found[1], None, "POST", "v1") if found is not None else None
    return None


def _error(http_status: int, code: str, message: str, **extra: Any) -> Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return Response(http_status, [("content-type", JSON)], _json.dumps(body))


def check(route: Route, query: str, headers: list[tuple[bytes, bytes]]) -> Response | None:
    """Azure's refusal of a request without credentials or (on deployment paths) without ``api-version``."""
    names = {name.lower() for name, _ in headers}
    bearer = any(name.lower() == b"authorization" and value.startswith(b"Bearer ") for name, value in headers)
    if b"api-key" not in names and not bearer:
        return _error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                      "to provide a valid key for an active subscription and use a correct regional API endpoint "
                      "for your resource.")
    if route.version != "v1" and "api-version=" not in query:
        return _error(404, "404", "Resource not found")
    return None


def _filter_results(flagged: str | None = None) -> dict[str, Any]:
    return {c: ({"filtered": True, "severity": "high"} if c == flagged else dict(_SAFE)) for c in _CATEGORIES}


def _prompt_filter() -> list[dict[str, Any]]:
    return [{"prompt_index": 0, "content_filter_results": _filter_results()}]


def respond(route: Route, body: Any, prompt: Prompt | None, answer: Answer | None, ctx: Ctx) -> Response:
    """OpenAI's answer with Azure's content-filter results (and its opening stream chunk)."""
    response = _openai.respond(route._replace(vendor="openai"), body, prompt, answer, ctx)
    if route.op != "chat" or response.status != 200:
        return response
    if response.events is not None:
        opening = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                   "prompt_filter_results": _prompt_filter()}
        frames = [sse_event(_json.dumps_str(opening))]
        for frame in response.events:
            if not frame.startswith(b"data: {"):
                frames.append(frame)
                continue
            chunk = _json.loads(frame[len(b"data: "):].strip())
            for choice in chunk.get("choices") or ():
                choice["content_filter_results"] = _filter_results() if choice.get("delta") else {}
            frames.append(sse_event(_json.dumps_str(chunk)))
        return Response(200, [("content-type", SSE)], events=frames)
    data = _json.loads(response.body)
    data["prompt_filter_results"] = _prompt_filter()
    for choice in data.get("choices") or ():
        choice["content_filter_results"] = _filter_results()
    return Response(200, [("content-type", JSON)], _json.dumps(data))


def error_response(route: Route, status: int, fault: Fault, model: str | None, input_tokens: int) -> Response:
    """Azure's error bodies: 401/429 with a string ``code``, content-filter 400s with the flagged category."""
    if fault.code == "content_filter" or (fault.code is None and fault.error_type == "content_filter"):
        category = "hate"
        message = fault.message or ("The response was filtered due to the prompt triggering Azure OpenAI's "
                                    "content management policy. Please modify your prompt and retry.")
        inner = {"code": "ResponsibleAIPolicyViolation",
                 "content_filter_result": {c: {"filtered": c == category, "severity": "high" if c == category
                                               else "safe"} for c in _CATEGORIES}}
        return _error(status, "content_filter", message, param="prompt", type=None, status=status, innererror=inner)
    if status in (401, 429) and fault.message is None and fault.context_limit is None:
        retry = fault.retry_after if fault.retry_after is not None else 1.0
        if status == 401:
            response = check(route, "", [])
            assert response is not None
            return response
        response = _error(429, "429", f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                          f"version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing "
                          f"tier. Please retry after {_openai.format_retry_after(retry)} seconds.")
        if fault.retry_after is not None:
            response.headers.append(("retry-after", _openai.format_retry_after(retry)))
            response.headers.append(("retry-after-ms", str(max(0, round(retry * 1000)))))
        return response
    return _openai.error_response(route._replace(vendor="openai"), status, fault, model, input_tokens)
