"""The debug logger: a redacted, bounded history of requests and structured log records of their lifecycle.

:class:`DebugLogger` follows requests as an observer of the manager's events (``manager.add_observer(logger)``)
and through its explicit API (``log_request`` / ``log_response`` / ``log_error`` / ``log_fallback``). It keeps
the requests in flight and the last ``max_history`` finished ones (streams included, with their chunk count and
time to first token), and logs each step as a structured record (see
:mod:`spoon_llm.monitoring.structured_logging`) on the ``spoon_llm.monitoring`` logger.

Prompts and answers are not kept unless :meth:`DebugLogger.enable_request_logging` /
:meth:`DebugLogger.enable_response_logging` say so, and then only the first ``max_body_chars`` characters.
Everything stored or logged goes through :class:`~spoon_llm.monitoring.redaction.Redactor`: API keys, credential
headers and secret-named fields never reach the history or the logs. Prompts reach the logger through a small
middleware (:attr:`DebugLogger.middleware`) because lifecycle events carry no message bodies.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..middleware.base import AttemptContext, Middleware
from .metrics import error_name, event_cost
from .redaction import Redactor, truncate
from .structured_logging import LOGGER_NAME, log_event

if TYPE_CHECKING:
    from ..errors import LLMError
    from ..events import Event
    from ..types import TokenUsage

__all__ = ["DebugLogger", "RequestRecord"]

# Request parameters that are bodies (prompts, inputs): kept only with request logging on.
_BODY_PARAMS = frozenset({"messages", "prompt", "input", "inputs", "contents", "content", "system", "tools"})
_PARAM_CHARS = 200  # non-body parameter values are short; cut anything longer


@dataclass(slots=True)
class RequestRecord:
    """One request as the debug logger saw it; every text field is already redacted."""

    request_id: str
    method: str
    provider: str | None = None
    model: str | None = None
    deployment: str | None = None
    route: str | None = None
    status: str = "active"  # active | success | error | cancelled
    started: float = field(default_factory=time.time)
    ended: float | None = None
    duration: float | None = None
    attempts: int = 0
    retries: int = 0
    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    attempt_errors: list[str] = field(default_factory=list)
    error_type: str | None = None
    error: str | None = None
    status_code: int | None = None
    stream: bool = False
    time_to_first_token: float | None = None
    chunk_count: int | None = None
    usage: dict[str, int] | None = None
    cost: float | None = None
    tags: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    request: str | None = None
    response: str | None = None
    _switch_from: dict[str, Any] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, safe to print or serve."""
        data = asdict(self)
        del data["_switch_from"]
        return data


def _usage_dict(usage: TokenUsage | Mapping[str, Any] | None) -> dict[str, int] | None:
    if usage is None:
        return None
    get = usage.get if isinstance(usage, Mapping) else lambda name, default=0: getattr(usage, name, default)
    names = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "reasoning_tokens")
    return {name: int(get(name, 0) or 0) for name in names}


def _response_text(response: Any) -> str | None:
    if response is None:
        return None
    if isinstance(response, str):
        return response
    content = getattr(response, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(response, Mapping):
        return json.dumps(response, default=str)
    return None


class DebugLogger:
    """Redacted request history and structured lifecycle logs; an observer and an explicit API. Thread-safe.

    ``max_history`` bounds the finished requests kept, ``max_active`` the in-flight ones (requests cancelled
    mid-way never finish: the oldest are dropped). ``secret_fields`` adds field names to redact. ``logger``
    defaults to ``logging.getLogger("spoon_llm.monitoring")``.
    """

    def __init__(
        self,
        *,
        max_history: int = 1000,
        max_active: int = 10_000,
        log_requests: bool = False,
        log_responses: bool = False,
        max_body_chars: int = 2000,
        secret_fields: Iterable[str] = (),
        logger: logging.Logger | None = None,
    ) -> None:
        self.redactor = Redactor(secret_fields)
        self.logger = logger if logger is not None else logging.getLogger(LOGGER_NAME)
        self.log_requests = log_requests
        self.log_responses = log_responses
        self.max_body_chars = max_body_chars
        self.max_active = max_active
        self._history: deque[RequestRecord] = deque(maxlen=max_history)
        self._active: dict[str, RequestRecord] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        #: Add to a manager (``manager.add_middleware(logger.middleware)``) to capture prompts and stream answers.
        self.middleware = DebugCapture(self)

    # -- settings -------------------------------------------------------------------------------------------

    def set_log_level(self, level: int | str) -> None:
        """Set the level of this logger's ``logging.Logger`` (``"DEBUG"`` shows every step)."""
        self.logger.setLevel(level.upper() if isinstance(level, str) else level)

    def enable_request_logging(self, enabled: bool = True) -> None:
        """Keep and log prompts and request bodies (truncated, redacted)."""
        self.log_requests = enabled

    def enable_response_logging(self, enabled: bool = True) -> None:
        """Keep and log answer texts (truncated, redacted)."""
        self.log_responses = enabled

    # -- the explicit API -----------------------------------------------------------------------------------

    def log_request(self, provider: str | None, method: str, params: Mapping[str, Any] | None = None, *,
                    model: str | None = None, request_id: str | None = None) -> str:
        """Start following a request; returns its id for :meth:`log_response` / :meth:`log_error`."""
        rid = request_id or f"dbg-{next(self._ids)}"
        params = dict(params or {})
        if model is None and isinstance(params.get("model"), str):
            model = params["model"]
        record = RequestRecord(rid, method, provider=provider, model=model, params=self._params(params))
        if self.log_requests:
            body = {k: v for k, v in params.items() if k in _BODY_PARAMS}
            if body:
                record.request = self._body(body)
        self._open(record)
        self._log(logging.DEBUG, "llm_request_started", request_id=rid, provider=provider, model=model,
                  operation=method)
        if record.request is not None:
            self._log(logging.DEBUG, "llm_request", request_id=rid, provider=provider, model=model,
                      request=record.request)
        return rid

    def log_response(self, request_id: str, response: Any, duration: float | None = None, *,
                     chunk_count: int | None = None) -> None:
        """Finish a request successfully (``response``: an LLMResponse, a final chunk, a dict or text)."""
        record = self._close(request_id)
        if record is None:
            record = RequestRecord(request_id, "unknown", provider=getattr(response, "provider", None) or None)
        record.model = getattr(response, "model", None) or record.model
        usage = getattr(response, "usage", None)
        if usage is None and isinstance(response, Mapping):
            usage = response.get("usage")
        self._finish(record, True, duration, usage=usage, chunk_count=chunk_count,
                     cost=getattr(getattr(response, "cost", None), "total_cost", None), response=response)

    def log_error(self, request_id: str, error: BaseException | str, duration: float | None = None) -> None:
        """Finish a request with a failure."""
        record = self._close(request_id)
        if record is None:
            record = RequestRecord(request_id, "unknown", provider=getattr(error, "provider", None))
        self._finish(record, False, duration, error=error)

    def log_fallback(self, from_provider: str, to_provider: str, reason: BaseException | str | None = None, *,
                     request_id: str | None = None) -> None:
        """Note that a request moved from one provider to another."""
        reason_text = None if reason is None else (
            self.redactor.error(reason) if isinstance(reason, BaseException) else self.redactor.text(reason))
        switch = {"from": from_provider, "to": to_provider, "reason": reason_text}
        if request_id is not None:
            with self._lock:
                record = self._active.get(request_id)
                if record is not None:
                    record.fallbacks.append(switch)
        self._log(logging.INFO, "backend_switched", request_id=request_id, from_provider=from_provider,
                  to_provider=to_provider, reason=reason_text)

    # -- reading --------------------------------------------------------------------------------------------

    def get_request_history(self, provider: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Finished requests, oldest first (the newest ``limit``), optionally of one provider."""
        with self._lock:
            records = [r for r in self._history if provider is None or r.provider == provider]
        if limit is not None:
            records = records[-limit:] if limit > 0 else []
        return [r.to_dict() for r in records]

    def get_active_requests(self) -> list[dict[str, Any]]:
        """Requests in flight, oldest first."""
        with self._lock:
            records = list(self._active.values())
        return [r.to_dict() for r in records]

    def clear_history(self) -> None:
        """Forget finished and in-flight requests."""
        with self._lock:
            self._history.clear()
            self._active.clear()

    # -- the observer ---------------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Follow one lifecycle event from the manager."""
        kind = event.kind
        if kind == "request_start":
            route = event.data.get("route")
            record = RequestRecord(event.request_id, event.operation, started=event.timestamp,
                                   route=route if isinstance(route, str) else None,
                                   tags=self.redactor(event.tags) if event.tags else None)
            self._open(record)
            self._log(logging.DEBUG, "llm_request_started", request_id=event.request_id, operation=event.operation,
                      route=record.route)
        elif kind == "request_end":
            record = self._close(event.request_id) or RequestRecord(event.request_id, event.operation,
                                                                    started=event.timestamp)
            if event.provider is not None:
                record.provider, record.model, record.deployment = event.provider, event.model, event.deployment
            record.attempts = max(record.attempts, event.attempt)
            if event.success:
                self._finish(record, True, event.latency, usage=event.usage, chunk_count=event.chunk_count,
                             cost=event_cost(event), response=event.response)
            else:
                self._finish(record, False, event.latency, error=event.error, chunk_count=event.chunk_count)
        else:
            self._step(event)

    def _step(self, event: Event) -> None:
        kind = event.kind
        if kind in ("circuit_change", "budget_alert"):
            self._global_event(event)
            return
        switch: dict[str, Any] | None = None
        with self._lock:
            record = self._active.get(event.request_id)
            if record is None:
                return
            if kind == "attempt_start":
                record.attempts = event.attempt
                record.provider, record.model, record.deployment = event.provider, event.model, event.deployment
                switch, record._switch_from = record._switch_from, None
                if switch is not None:
                    switch.update(to=event.provider, to_deployment=event.deployment, to_model=event.model)
                    record.fallbacks.append(switch)
            elif kind == "attempt_end" and event.error is not None:
                record.attempt_errors.append(self.redactor.error(event.error))
            elif kind == "retry":
                record.retries += 1
            elif kind == "fallback":
                record._switch_from = {"from": event.provider, "from_deployment": event.deployment,
                                       "reason": error_name(event.error)}
            elif kind == "first_token":
                record.stream = True
                record.time_to_first_token = event.latency
        if kind == "attempt_end" and event.error is not None:
            self._log(logging.WARNING, "llm_attempt_failed", request_id=event.request_id, provider=event.provider,
                      model=event.model, deployment=event.deployment, attempt=event.attempt,
                      error_type=error_name(event.error), status_code=getattr(event.error, "status_code", None),
                      error=self.redactor.error(event.error), latency=event.latency)
        elif kind == "retry":
            self._log(logging.INFO, "llm_retry", request_id=event.request_id, provider=event.provider,
                      model=event.model, deployment=event.deployment, retry_count=record.retries,
                      reason=error_name(event.error))
        elif kind == "attempt_start" and switch is not None:
            self._log(logging.INFO, "backend_switched", request_id=event.request_id,
                      from_provider=switch["from"], from_deployment=switch["from_deployment"],
                      to_provider=event.provider, to_deployment=event.deployment, to_model=event.model,
                      reason=switch["reason"])
        elif kind == "first_token":
            self._log(logging.DEBUG, "llm_first_token", request_id=event.request_id, provider=event.provider,
                      model=event.model, ttft=event.latency)

    def _global_event(self, event: Event) -> None:
        if event.kind == "circuit_change":
            self._log(logging.WARNING, "circuit_changed", deployment=event.deployment,
                      old=event.data.get("old"), new=event.data.get("new"))
        else:
            self._log(logging.WARNING, "budget_alert", provider=event.provider, model=event.model,
                      tags=self.redactor(event.tags) if event.tags else None, **self._data(event.data))

    def _data(self, data: Mapping[str, Any]) -> dict[str, Any]:
        cleaned = self.redactor(dict(data), limit=_PARAM_CHARS)
        return cleaned if isinstance(cleaned, dict) else {}

    # -- internals ------------------------------------------------------------------------------------------

    def _open(self, record: RequestRecord) -> None:
        with self._lock:
            active = self._active
            while len(active) >= self.max_active:
                del active[next(iter(active))]
            active[record.request_id] = record

    def _close(self, request_id: str) -> RequestRecord | None:
        with self._lock:
            return self._active.pop(request_id, None)

    def _finish(self, record: RequestRecord, success: bool, duration: float | None, *, usage: Any = None,
                chunk_count: int | None = None, cost: float | None = None, response: Any = None,
                error: LLMError | BaseException | str | None = None) -> None:
        now = time.time()
        record.ended = now
        record.duration = duration if duration is not None else now - record.started
        record.status = "success" if success else ("error" if error is not None else "cancelled")
        record.chunk_count = chunk_count
        if chunk_count is not None:
            record.stream = True
        record.usage = _usage_dict(usage)
        record.cost = float(cost) if isinstance(cost, (int, float)) else None
        if self.log_responses and response is not None and record.response is None:
            text = _response_text(response)
            if text is not None:
                record.response = truncate(self.redactor.text(text), self.max_body_chars)
        if error is not None:
            record.error_type = error_name(error)
            record.error = (self.redactor.error(error) if isinstance(error, BaseException)
                            else self.redactor.text(str(error)))
            record.status_code = getattr(error, "status_code", None)
        with self._lock:
            self._history.append(record)
        self._log_finish(record)

    def _log_finish(self, record: RequestRecord) -> None:
        tokens = record.usage or {}
        common = {"request_id": record.request_id, "provider": record.provider, "model": record.model,
                  "deployment": record.deployment, "operation": record.method}
        if record.status == "success":
            self._log(logging.DEBUG, "llm_call_succeeded", **common, duration=record.duration,
                      attempts=record.attempts or None, retry_count=record.retries,
                      input_tokens=tokens.get("input_tokens"), output_tokens=tokens.get("output_tokens"),
                      chunk_count=record.chunk_count, ttft=record.time_to_first_token)
            if record.response is not None:
                self._log(logging.DEBUG, "llm_response", **common, response=record.response)
            if record.cost is not None:
                self._log(logging.INFO, "cost_tracked", **common, cost=record.cost,
                          input_tokens=tokens.get("input_tokens"), output_tokens=tokens.get("output_tokens"),
                          tags=record.tags)
        elif record.status == "cancelled":  # the caller's choice, not a failure
            self._log(logging.INFO, "llm_call_cancelled", **common, duration=record.duration,
                      attempts=record.attempts or None)
        else:
            self._log(logging.ERROR, "llm_call_failed", **common, error_type=record.error_type,
                      status_code=record.status_code, error=record.error, duration=record.duration,
                      attempts=record.attempts or None, retry_count=record.retries)

    def _log(self, level: int, event: str, **fields: Any) -> None:
        if self.logger.isEnabledFor(level):
            try:
                log_event(self.logger, level, event, fields)
            except Exception:  # a log handler that raises must not fail the request it describes
                pass

    def _params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        small = {k: v for k, v in params.items() if k not in _BODY_PARAMS}
        cleaned = self.redactor(small, limit=_PARAM_CHARS)
        return cleaned if isinstance(cleaned, dict) else {}

    def _body(self, body: Any) -> str:
        text = json.dumps(self.redactor(body), default=str, ensure_ascii=False)
        return truncate(text, self.max_body_chars)

    def capture_request(self, request_id: str, messages: Any, params: Mapping[str, Any]) -> None:
        """Attach a prompt and parameters to an in-flight request (used by :class:`DebugCapture`)."""
        if not self.log_requests:
            return
        with self._lock:
            record = self._active.get(request_id)
            if record is None or record.request is not None:
                return
            record.request = self._body({"messages": messages, **{k: v for k, v in params.items()
                                                                    if k in _BODY_PARAMS}})
            record.params = self._params(params)
        self._log(logging.DEBUG, "llm_request", request_id=request_id, provider=record.provider,
                  model=record.model, params=record.params, request=record.request)

    def capture_response(self, request_id: str, response: Any) -> None:
        """Attach a stream's final text to an in-flight request (used by :class:`DebugCapture`)."""
        if not self.log_responses:
            return
        text = _response_text(response)
        if text is None:
            return
        with self._lock:
            record = self._active.get(request_id)
            if record is not None:
                record.response = truncate(self.redactor.text(text), self.max_body_chars)

    def __repr__(self) -> str:
        return (f"DebugLogger(history={len(self._history)}/{self._history.maxlen}, active={len(self._active)}, "
                f"log_requests={self.log_requests}, log_responses={self.log_responses})")


class DebugCapture(Middleware):
    """Hands each attempt's prompt and parameters, and a stream's final text, to a :class:`DebugLogger`.

    Lifecycle events carry no bodies; this middleware does, and only when the logger asks for them.
    """

    name = "debug_logger"

    def __init__(self, debug_logger: DebugLogger) -> None:
        self.debug_logger = debug_logger

    async def before_attempt(self, ctx: AttemptContext) -> None:
        """Capture the prompt of the request's first attempt."""
        logger = self.debug_logger
        if logger.log_requests:
            messages = [m.model_dump(mode="json", exclude_none=True) for m in ctx.messages or ()]
            logger.capture_request(ctx.request_id, messages, ctx.kwargs)

    async def after_attempt(self, ctx: AttemptContext, *, response: Any = None, usage: TokenUsage | None = None,
                            error: LLMError | None = None) -> None:
        """Capture a stream's final text (whole answers arrive with the ``request_end`` event)."""
        if response is not None and self.debug_logger.log_responses and getattr(response, "kind", None) == "final":
            self.debug_logger.capture_response(ctx.request_id, response)

    def status(self) -> dict[str, Any]:
        """What ``manager.get_status()`` shows."""
        return {"log_requests": self.debug_logger.log_requests, "log_responses": self.debug_logger.log_responses}
