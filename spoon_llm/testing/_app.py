"""Request dispatch: route, record, then fault / replay / script / default answer.

Everything here runs synchronously on the server's event loop for each complete request; the
protocol only moves bytes. The common case (no fault, replay or script queued) takes no lock.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from . import _answers, _anthropic, _azure, _bedrock, _compat, _gemini, _json, _openai, _responses, _vertex
from ._answers import Prompt
from ._faults import Fault, FaultBook
from ._http import JSON, Ctx, IdSource, Response
from ._records import RecordedRequest, Recorder, mask_headers, parse_query
from ._replay import ReplayBook
from ._routes import CHAT, COMPLETION, OPENAI_FAMILY, Route, resolve
from ._script import ScriptBook
from ._strict import StrictChecks

_ANSWERED = frozenset({CHAT, COMPLETION})


class RateLimits:
    """Rate-limit headers to send (OpenAI ``x-ratelimit-*``, Anthropic ``anthropic-ratelimit-*``).

    ``remaining`` counts down with the requests of the current minute.
    """

    def __init__(self, requests_per_minute: int = 10_000, tokens_per_minute: int = 2_000_000) -> None:
        self.requests = requests_per_minute
        self.tokens = tokens_per_minute
        self._window = 0
        self._used = 0

    def headers(self, vendor: str) -> list[tuple[str, str]]:
        """Return the headers for one response of ``vendor`` (none for Gemini)."""
        now = time.time()
        window = int(now // 60)
        if window != self._window:
            self._window, self._used = window, 0
        self._used += 1
        left = max(0, self.requests - self._used)
        reset_s = 60 - int(now % 60)
        if vendor in OPENAI_FAMILY:
            return [
                ("x-ratelimit-limit-requests", str(self.requests)),
                ("x-ratelimit-limit-tokens", str(self.tokens)),
                ("x-ratelimit-remaining-requests", str(left)),
                ("x-ratelimit-remaining-tokens", str(self.tokens)),
                ("x-ratelimit-reset-requests", f"{reset_s}s"),
                ("x-ratelimit-reset-tokens", "0s"),
            ]
        if vendor == "anthropic":
            reset = datetime.fromtimestamp((window + 1) * 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            return [
                ("anthropic-ratelimit-requests-limit", str(self.requests)),
                ("anthropic-ratelimit-requests-remaining", str(left)),
                ("anthropic-ratelimit-requests-reset", reset),
                ("anthropic-ratelimit-tokens-limit", str(self.tokens)),
                ("anthropic-ratelimit-tokens-remaining", str(self.tokens)),
                ("anthropic-ratelimit-tokens-reset", reset),
                ("anthropic-ratelimit-input-tokens-limit", str(self.tokens)),
                ("anthropic-ratelimit-input-tokens-remaining", str(self.tokens)),
                ("anthropic-ratelimit-input-tokens-reset", reset),
                ("anthropic-ratelimit-output-tokens-limit", str(self.tokens // 5)),
                ("anthropic-ratelimit-output-tokens-remaining", str(self.tokens // 5)),
                ("anthropic-ratelimit-output-tokens-reset", reset),
            ]
        return []


_GEMINI_HEADERS = frozenset({b"x-goog-api-key", b"x-goog-api-client"})


def _vendor_hint(headers: list[tuple[bytes, bytes]], query: str) -> str | None:
    """Tell Anthropic and Gemini model-list requests from OpenAI's by their headers."""
    for name, _ in headers:
        lname = name.lower()
        if lname == b"anthropic-version":
            return "anthropic"
        if lname in _GEMINI_HEADERS:
            return "gemini"
    return "gemini" if query.startswith("key=") or "&key=" in query else None


def _request_id_header(vendor: str, token: str) -> tuple[str, str]:
    if vendor in ("anthropic", "vertex_anthropic"):
        return ("request-id", f"req_011C{token}")
    if vendor == "bedrock":
        return ("x-amzn-RequestId", token)
    return ("x-request-id", f"req_{token}")


def _plain_error(status: int, message: str) -> Response:
    body = _json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})
    return Response(status, [("content-type", JSON)], body)


class SimulatorApp:
    """The simulator's state (scripts, faults, replays, records) and its request handler."""

    def __init__(self, *, max_records: int | None = 10_000) -> None:
        self.scripts = ScriptBook()
        self.faults = FaultBook()
        self.replays = ReplayBook()
        self.records = Recorder(max_records)
        self.rate_limits: RateLimits | None = None
        self.ids = IdSource()
        #: Strict mode (see :mod:`._strict`): refuse what the real APIs refuse.
        self.strict: StrictChecks | None = None
        #: Called with every request and its answer (the request log of ``spoon-llm simulate --log``).
        self.on_answer: Callable[[RecordedRequest, Response], object] | None = None

    def handle(self, method: bytes, url: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> Response:
        """Answer one complete request; never raises (bugs become a 500 with the traceback)."""
        try:
            return self._handle(method.decode("latin-1"), url.decode("latin-1"), headers, body)
        except Exception:  # the simulator must answer even when it has a bug
            return _plain_error(500, "simulator bug:\n" + traceback.format_exc())

    def _handle(self, method: str, url: str, raw_headers: list[tuple[bytes, bytes]], raw_body: bytes) -> Response:
        path, _, query = url.partition("?")
        route = resolve(path, _vendor_hint(raw_headers, query) if path.startswith("/v1/models") else None)
        body: Any = None
        bad_json = False
        if raw_body:
            try:
                body = _json.loads(raw_body)
            except ValueError:
                body = raw_body.decode("utf-8", "replace")
                bad_json = True
        model, stream = self._model_and_stream(route, body)
        record = RecordedRequest(
            method=method,
            path=path,
            query=parse_query(query),
            raw_headers=mask_headers(raw_headers),
            body=body,
            vendor=route.vendor if route else None,
            endpoint=route.endpoint if route else None,
            model=model,
            stream=stream,
            time=time.time(),
        )
        self.records.add(record)
        token = self.ids.next()
        if route is None:
            response = _plain_error(404, f"Invalid URL ({method} {path})")
            response.headers.append(("x-request-id", f"req_{token}"))
            if self.on_answer is not None:
                self.on_answer(record, response)
            return response
        refused = None
        if self.strict is not None and not bad_json and method == route.method:
            refused = self.strict.check(route, raw_headers, record.query, body, model)
        denied = _azure.check(route, query, raw_headers) if route.vendor == "azure" else None
        if route.vendor in (_vertex.VENDOR, _vertex.ANTHROPIC_VENDOR):
            denied = _vertex.check(route, query, raw_headers)
        if route.vendor == "bedrock":
            denied = _bedrock.auth_failure(raw_headers)
        if denied is not None:
            response = denied
        elif refused is not None and refused.status is not None:
            response = self._error(route, refused.status, refused, model, body, token)
        else:
            response = self._answer(route, method, body, bad_json, model, token)
        response.headers.append(_request_id_header(route.vendor, token))
        if self.rate_limits is not None:
            response.headers.extend(self.rate_limits.headers(route.vendor))
        if self.on_answer is not None:
            self.on_answer(record, response)
        return response

    @staticmethod
    def _model_and_stream(route: Route | None, body: Any) -> tuple[str | None, bool]:
        if route is None:
            return None, False
        if route.vendor in ("gemini", "vertex"):
            return _gemini.bare_model(route.model), route.op == "stream_generate"
        if route.vendor == "bedrock":
            return _bedrock.model_and_stream(route)
        if route.vendor == _vertex.ANTHROPIC_VENDOR:  # the model in the path, ``stream`` in the body
            return route.model or _anthropic.model_and_stream(body)[0], _anthropic.model_and_stream(body)[1]
        if route.model is not None:
            return route.model, False
        return _openai.model_and_stream(body)  # the same two fields in Anthropic bodies

    def _prompt(self, route: Route, body: Any) -> Prompt:
        if route.vendor == "anthropic":
            return _anthropic.prompt_of(body)
        if route.vendor == _vertex.ANTHROPIC_VENDOR:
            prompt = _anthropic.prompt_of(body)
            prompt.model = route.model or prompt.model
            return prompt
        if route.vendor == "bedrock":
            return _bedrock.prompt_of(route, body)
        if route.vendor in ("gemini", "vertex"):
            return _gemini.prompt_of(route, body)
        if route.vendor == _responses.VENDOR:
            return _responses.prompt_of(body)
        if route.op == "completion":
            return _openai.completion_prompt(body)
        return _openai.chat_prompt(body)

    def _error(self, route: Route, status: int, fault: Fault, model: str | None, body: Any, token: str) -> Response:
        tokens = 0
        if fault.context_limit is not None:
            tokens = max(1, _answers.estimate_tokens(self._prompt(route, body).input_chars))
        if route.vendor in ("anthropic", _vertex.ANTHROPIC_VENDOR):
            return _anthropic.error_response(route, status, fault, model, tokens, f"req_011C{token}")
        if route.vendor == "bedrock":
            return _bedrock.error_response(route, status, fault, model, tokens)
        if route.vendor in ("gemini", "vertex"):
            return _gemini.error_response(route, status, fault, model, tokens)
        if route.vendor == "azure":
            return _azure.error_response(route, status, fault, model, tokens)
        return _openai.error_response(route, status, fault, model, tokens)

    def _answer(self, route: Route, method: str, body: Any, bad_json: bool, model: str | None, token: str) -> Response:
        if method != route.method:
            return self._error(
                route, 405, Fault(status=405, message=f"Method {method} not allowed"), model, None, token
            )
        if bad_json:
            return self._error(
                route,
                400,
                Fault(status=400, message="We could not parse the JSON body of your request."),
                model,
                None,
                token,
            )
        fault = self.faults.take(route.vendor, model, route.endpoint)
        if fault is not None and fault.status is not None:
            response = self._error(route, fault.status, fault, model, body, token)
            if fault.affects_delivery:
                response.fault = fault
            return response
        if fault is not None and fault.reset:
            return Response(0, [], fault=fault)
        replayed = self.replays.take(route.vendor, route.endpoint)
        if replayed is not None:
            response = replayed
        else:
            ctx = Ctx(token, self.ids, int(time.time()))
            prompt = answer = None
            if route.endpoint in _ANSWERED:
                prompt = self._prompt(route, body)
                reply = self.scripts.take(route.vendor, model)
                answer = _answers.resolve(prompt, reply, lambda: self._tool_id(route.vendor))
            if route.vendor in ("anthropic", _vertex.ANTHROPIC_VENDOR):
                response = _anthropic.respond(route, body, prompt, answer, ctx)
            elif route.vendor == "gemini":
                response = _gemini.respond(route, body, prompt, answer, ctx)
            elif route.vendor == "bedrock":
                response = _bedrock.respond(route, body, prompt, answer, ctx)
            elif route.vendor == _vertex.VENDOR:
                response = _vertex.respond(route, body, prompt, answer, ctx)
            elif route.vendor == "azure":
                response = _azure.respond(route, body, prompt, answer, ctx)
            elif route.vendor in _compat.VENDOR_ROOTS:
                response = _compat.respond(route, body, prompt, answer, ctx)
            elif route.vendor == _responses.VENDOR:
                response = _responses.respond(route, body, prompt, answer, ctx)
            else:
                response = _openai.respond(route, body, prompt, answer, ctx)
        if fault is not None:
            if fault.malformed:
                _corrupt(response)
            if fault.affects_delivery:  # the protocol's slow path; plain answers stay on the fast one
                response.fault = fault
        return response

    def _tool_id(self, vendor: str) -> str:
        token = self.ids.next()
        return f"toolu_01{token}" if vendor in ("anthropic", "vertex_anthropic") else f"call_{token}"


def _corrupt(response: Response) -> None:
    """Cut the JSON in half: the body, or the data of the second stream event."""
    if response.events is None:
        response.body = response.body[: max(1, len(response.body) // 2)]
        return
    events = response.events
    index = min(1, len(events) - 1)
    if index >= 0:
        frame = events[index]
        cut = frame[: max(1, len(frame) // 2)].rstrip(b"\r\n")
        events[index] = cut + (b"\r\n\r\n" if frame.endswith(b"\r\n\r\n") else b"\n\n")
