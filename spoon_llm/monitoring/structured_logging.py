"""Structured log records through the standard :mod:`logging` module.

Each record has a stable event name (``llm_call_failed``, ``cost_tracked``, ``backend_switched``, ...) in
``record.event`` and its fields (provider, model, error_type, retry_count, ...) as record attributes, so any
handler can use them; the message itself reads ``event key=value ...`` for plain-text logs.
:class:`JsonFormatter` writes one JSON object per line. Values must be redacted before they get here.

Event names:

* ``llm_request_started`` (DEBUG): a request arrived (operation, route)
* ``llm_request`` (DEBUG): request parameters / prompt, when request logging is on (truncated)
* ``llm_attempt_failed`` (WARNING): one attempt failed (provider, model, deployment, error_type, status_code)
* ``llm_retry`` (INFO): the manager retries the same deployment
* ``backend_switched`` (INFO): the manager falls back to another deployment (from_*, to_*)
* ``llm_first_token`` (DEBUG): a stream's first chunk reached the caller (ttft)
* ``llm_call_succeeded`` (DEBUG): the request finished (duration, tokens, attempts, retry_count)
* ``llm_response`` (DEBUG): the answer text, when response logging is on (truncated)
* ``llm_call_failed`` (ERROR): the request failed (error_type, error, retry_count)
* ``cost_tracked`` (INFO): a request's cost became known (cost, tokens, tags)
* ``circuit_changed`` (WARNING): a deployment's circuit changed state (old, new)
* ``budget_alert`` (WARNING): a budget crossed an alert threshold
"""

from __future__ import annotations

import json
import logging
from typing import Any

__all__ = ["LOGGER_NAME", "JsonFormatter", "log_event"]

LOGGER_NAME = "spoon_llm.monitoring"

# Attributes every LogRecord has: a field with one of these names is stored with a trailing underscore.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "event", "fields"}


def _logfmt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return json.dumps(text) if (" " in text or "=" in text or not text) else text


def log_event(logger: logging.Logger, level: int, event: str, fields: dict[str, Any]) -> None:
    """Log one structured record; fields that are ``None`` are left out. Callers check ``isEnabledFor`` first."""
    present = {k: v for k, v in fields.items() if v is not None}
    extra: dict[str, Any] = {(f"{k}_" if k in _RESERVED else k): v for k, v in present.items()}
    extra["event"] = event
    extra["fields"] = present
    message = " ".join([event, *(f"{k}={_logfmt(v)}" for k, v in present.items())])
    logger.log(level, "%s", message, extra=extra)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, event, message and the record's structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        data: dict[str, Any] = {
            "time": record.created,
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None),
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update({k: v for k, v in fields.items() if k not in data})
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)
