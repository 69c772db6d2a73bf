"""Usage metrics for ``GET /api/admin/metrics``, folded from the gateway's finished-request entries.

The request path only appends its entry to the request log (as before); the log's background flush hands each
batch here, so counting costs the requests nothing. Latency quantiles come from a bounded sketch; the recent calls
are a bounded ring of redacted entries (key alias, never the key; no prompt or answer) with their attempt traces.
Counts are this worker's since it started.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone
from typing import Any

from ...monitoring.sketch import QuantileSketch

__all__ = ["RequestInsight"]

#: Routes that call a backend (the rest, /v1/models and count_tokens, are not calls).
_CALL_ROUTES = frozenset({"chat", "completions", "embeddings", "messages"})


class _Group:
    __slots__ = ("calls", "cost", "errors", "input_tokens", "latency_total", "output_tokens")

    def __init__(self) -> None:
        self.cost = 0.0
        self.calls = 0
        self.errors = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.latency_total = 0.0

    def view(self) -> dict[str, Any]:
        return {"calls": self.calls, "errors": self.errors, "total_tokens": self.input_tokens + self.output_tokens,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "avg_latency_ms": round(self.latency_total / self.calls, 3) if self.calls else None,
                "cost_usd": self.cost}


def _parse_trace(trace: str) -> list[dict[str, Any]]:
    out = []
    for part in trace.split(","):
        if not part:
            continue
        deployment, _, result = part.rpartition(":")
        out.append({"deployment": deployment, "result": result})
    return out


class RequestInsight:
    """Counts of calls by backend and model, latency quantiles, and the last ``recent`` calls."""

    def __init__(self, recent: int = 200) -> None:
        self.total = _Group()
        self.by_backend: dict[str, _Group] = {}
        self.by_model: dict[str, _Group] = {}
        self.by_key: dict[str, _Group] = {}
        self.latency = QuantileSketch()
        self.recent: deque[tuple[Any, ...]] = deque(maxlen=recent)
        self.max_groups = 1000  # bounds by_backend and by_model: model names come from clients

    def _group(self, table: dict[str, _Group], name: str) -> _Group:
        group = table.get(name)
        if group is None:
            if len(table) >= self.max_groups:
                name = "__other__"
                group = table.get(name)
            if group is None:
                group = table[name] = _Group()
        return group

    def add(self, entries: list[tuple[Any, ...]]) -> None:
        """Fold a batch of request-log entries (see ``spoon_llm.server._ops._FIELDS``)."""
        for entry in entries:
            (_, _, _, route, status, alias, model, provider, latency_ms, tin, tout, cost, outcome, _, _) = entry
            if route not in _CALL_ROUTES or outcome == "rejected":
                continue
            failed = status >= 400
            groups = [self.total]
            if provider:
                groups.append(self._group(self.by_backend, provider))
            if model:
                groups.append(self._group(self.by_model, model))
            if alias and alias != "-":
                # Not capped like the tables above: aliases come from the key store, not from clients, and a cap
                # would read every key past it as unused.
                key = self.by_key.get(alias)
                if key is None:
                    key = self.by_key[alias] = _Group()
                groups.append(key)
            for group in groups:
                group.cost += cost
                group.calls += 1
                group.errors += failed
                group.input_tokens += tin
                group.output_tokens += tout
                group.latency_total += latency_ms
            self.latency.add(latency_ms)
            self.recent.append(entry)

    def snapshot(self, recent: int = 50) -> dict[str, Any]:
        """``overview``, ``by_backend``, ``by_model`` and ``recent_calls`` (newest first, at most ``recent``)."""
        total = self.total
        p50, p95, p99 = self.latency.quantiles((0.5, 0.95, 0.99))
        overview = {
            "total_calls": total.calls, "successful_calls": total.calls - total.errors,
            "failed_calls": total.errors, "total_tokens": total.input_tokens + total.output_tokens,
            "input_tokens": total.input_tokens, "output_tokens": total.output_tokens,
            "error_rate": (total.errors / total.calls) if total.calls else 0.0,
            "latency_ms": {name: round(value, 3) if value is not None else None
                           for name, value in (("p50", p50), ("p95", p95), ("p99", p99))},
        }
        calls = []
        for entry in list(self.recent)[::-1][:max(recent, 0)]:
            (ts, request_id, _, route, status, alias, model, provider, latency_ms, tin, tout, cost, outcome, _,
             trace) = entry
            calls.append({"time": datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds"),
                          "request_id": request_id, "route": route, "status": status, "key_alias": alias,
                          "model": model, "backend": provider, "latency_ms": latency_ms, "input_tokens": tin,
                          "output_tokens": tout, "cost_usd": cost, "outcome": outcome,
                          "attempts": _parse_trace(trace)})
        return {"overview": overview,
                "by_backend": {name: g.view() for name, g in sorted(self.by_backend.items())},
                "by_model": {name: g.view() for name, g in sorted(self.by_model.items())},
                "recent_calls": calls}
