"""The tamper-evident audit log of admin actions.

Each record holds ``seq``, ``ts`` (Unix time), ``time`` (ISO 8601 UTC), ``actor`` (key alias or JWT subject),
``source`` (client address), ``action``, ``target``, ``before``, ``after``, ``result`` (``ok`` or ``failed``) and
``message``, plus two chain fields: ``prev`` (the previous record's ``mac``; empty for the first) and ``mac``, an
HMAC-SHA-256 under the audit secret over the record's canonical JSON (without ``mac``) . Altering, removing or
reordering any record breaks every later ``mac``, which :func:`verify_chain` reports by ``seq``. (Dropping records
from the end is not detectable from the log alone; ship the last ``mac`` elsewhere to cover that.)

Every record is also logged on the ``spoon_llm.server.audit`` logger (INFO; WARNING when the action failed) as a
structured record (see :mod:`spoon_llm.monitoring.structured_logging`): ``record.event`` is the action
(``backend_switched``, ``budget_changed``, ``backend_endpoint_changed``, ``key_created``, ``key_updated``,
``key_revoked``), ``record.fields`` the record's fields, and :class:`~spoon_llm.monitoring.JsonFormatter` writes it
as one JSON line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ...errors import ConfigurationError
from ...monitoring.structured_logging import log_event
from .store import AdminStore

__all__ = ["AuditLog", "ChainReport", "audit_secret", "record_mac", "verify_chain"]

logger = logging.getLogger("spoon_llm.server.audit")

#: The actions recorded, as written in records and log messages.
ACTIONS = ("backend_switched", "backend_endpoint_changed", "budget_changed", "key_created", "key_updated",
           "key_revoked", "config_reloaded")


def audit_secret(audit: str | None, master_key: str | None, server_secret: str | None) -> bytes:
    """The chain's HMAC key: ``[server] audit_secret``, else one derived from the master key, else the secret."""
    if audit:
        return audit.encode("utf-8")
    base = master_key or server_secret
    if base:
        return hmac.new(base.encode("utf-8"), b"spoon-llm audit chain v1", hashlib.sha256).digest()
    raise ConfigurationError("the audit log needs a key: set [server] audit_secret (or SPOON_LLM_AUDIT_SECRET), or a "
                             "master key ([server] master_key / SPOON_LLM_MASTER_KEY) to derive one from",
                             key="server.audit_secret")


def record_mac(record: Mapping[str, Any], secret: bytes) -> str:
    """The HMAC of a record: over its canonical JSON without the ``mac`` field."""
    body = {k: v for k, v in record.items() if k != "mac"}
    text = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :func:`verify_chain` found: ``ok``, how many records were checked, the first bad ``seq`` and why."""

    ok: bool
    records: int
    bad_seq: int | None = None
    reason: str | None = None


def verify_chain(records: Iterable[Mapping[str, Any]], secret: bytes) -> ChainReport:
    """Check every record's ``mac``, its link to the previous one, and that ``seq`` counts up from 1."""
    previous = ""
    count = 0
    for expected, record in enumerate(records, start=1):
        count = expected
        seq = record.get("seq")
        if seq != expected:
            return ChainReport(False, count, seq if isinstance(seq, int) else expected,
                               f"expected record {expected} here, found seq {seq!r} (a record was removed or "
                               "reordered)")
        if record.get("prev") != previous:
            return ChainReport(False, count, expected, "its prev does not match the previous record's mac "
                                                         "(a record before it was removed or altered)")
        mac = record.get("mac")
        if not isinstance(mac, str) or not hmac.compare_digest(mac, record_mac(record, secret)):
            return ChainReport(False, count, expected, "its mac does not match its contents (the record was "
                                                         "altered, or the audit secret differs)")
        previous = mac
    return ChainReport(True, count)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """Appends chained records to an :class:`AdminStore` and logs each as a structured record."""

    def __init__(self, store: AdminStore, secret: bytes) -> None:
        self.store = store
        self._secret = secret

    def __repr__(self) -> str:
        return f"AuditLog(store={self.store.describe()!r})"

    async def record(self, *, actor: str, source: str | None, action: str, target: str | None,
                     before: Any = None, after: Any = None, result: str = "ok", message: str = "") -> dict[str, Any]:
        """Append one record (atomically after the current last one) and log it; returns the record."""
        now = time.time()
        secret = self._secret

        def chain(last: Mapping[str, Any] | None) -> dict[str, Any]:
            record: dict[str, Any] = {
                "seq": (int(last["seq"]) + 1) if last is not None else 1, "ts": now, "time": _iso(now),
                "actor": actor, "source": source, "action": action, "target": target, "before": before,
                "after": after, "result": result, "message": message,
                "prev": str(last["mac"]) if last is not None else "",
            }
            record["mac"] = record_mac(record, secret)
            return record

        stored = await self.store.append_audit(chain)
        level = logging.INFO if result == "ok" else logging.WARNING
        if logger.isEnabledFor(level):
            log_event(logger, level, action, {k: v for k, v in stored.items() if k not in ("prev", "mac", "action")})
        return stored

    async def query(self, *, actor: str | None = None, action: str | None = None, target: str | None = None,
                    since: float | None = None, until: float | None = None, limit: int = 50,
                    offset: int = 0) -> dict[str, Any]:
        """Records matching every filter given, newest first, one page: ``{"items", "total", "limit", "offset"}``."""
        records = await self.store.audit_records()
        chosen = [r for r in reversed(records)
                  if (actor is None or r.get("actor") == actor) and (action is None or r.get("action") == action)
                  and (target is None or r.get("target") == target)
                  and (since is None or float(r.get("ts", 0)) >= since)
                  and (until is None or float(r.get("ts", 0)) < until)]
        return {"items": chosen[offset:offset + limit], "total": len(chosen), "limit": limit, "offset": offset}

    async def verify(self) -> ChainReport:
        """Check the whole chain."""
        return verify_chain(await self.store.audit_records(), self._secret)
