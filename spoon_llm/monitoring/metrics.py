"""In-process metrics: counters and latency quantiles by provider, model and deployment, in bounded memory.

:class:`MetricsCollector` counts two things:

* **calls**: what each provider saw. Every attempt the manager makes (``attempt_end`` events), or every
  :meth:`MetricsCollector.record_request` of the older explicit API, is one call to one provider, model and
  deployment: success or failure (by error class), tokens, latency, time to first token, cost.
* **requests**: what the application saw (``request_end`` events): one per ``manager.chat(...)``, however many
  attempts it took, with end-to-end latency, retries, fallbacks and stream chunk counts.

Latencies go into :class:`~spoon_llm.monitoring.sketch.QuantileSketch` (1% relative error), never into lists, so
memory stays flat over millions of requests; the recent-calls ring buffer and the number of (provider, model,
deployment) series kept (``max_series``, overflow goes to ``"__other__"``) are bounded too. Cost is counted once
per request, from ``request_end`` (``event.cost``, else ``response.cost.total_cost``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any, NamedTuple

from ._series import CANCELLED, SeriesStats, Stats, error_name, event_cost, tokens_of

if TYPE_CHECKING:
    from ..events import Event

__all__ = ["BATCH", "MetricsCollector", "SeriesStats", "Stats", "error_name", "event_cost"]

#: Finished requests queued before the collector folds them into its counters (reads fold at once).
BATCH = 256

OTHER = "__other__"
UNKNOWN = "unknown"
_DIMENSIONS = {"provider": 0, "model": 1, "deployment": 2}


class QueuedRequest(NamedTuple):
    """The layout of one queued ``request_end``.

    Built as a plain tuple literal in :meth:`MetricsCollector.on_event` (no class call on the request path) and read
    positionally by ``_fold_uniform``, ``_fold_each`` and :func:`_recent_call`; a test checks they agree.

    The ``a_*`` fields describe the only attempt of a one-attempt request (``None`` otherwise, and then
    ``attempts`` holds the whole trace).
    """

    timestamp: float
    operation: str
    latency: float
    outcome: str | None
    input_tokens: int | None
    output_tokens: int
    total_tokens: int
    cost: float | None
    chunks: int | None
    provider: str | None
    model: str | None
    deployment: str | None
    a_provider: str | None
    a_model: str | None
    a_deployment: str | None
    a_error: str | None
    a_latency: float
    attempts: list[Any] | None


class RecentCall(NamedTuple):
    """The layout of a recent-calls entry for one attempt of a request that made several.

    A one-attempt request is kept as its :class:`QueuedRequest` instead, told apart by length.
    """

    timestamp: float
    provider: str
    model: str | None
    deployment: str | None
    method: str
    duration: float
    success: bool
    error: str | None
    tokens: int


def _recent_call(item: tuple[Any, ...]) -> tuple[Any, ...]:
    """A recent-calls entry as (timestamp, provider, model, deployment, method, duration, success, error, tokens).

    One-attempt requests are kept as their queued values (see ``MetricsCollector.on_event``), the rest as such
    tuples already.
    """
    if len(item) == len(RecentCall._fields):
        return item
    (now, operation, _, _, input_tokens, _, total_tokens, _, _, _, _, _, provider, model, deployment, error, latency,
     _) = item
    succeeded = error is None
    return (now, provider, model, deployment, operation, latency, succeeded, error,
            total_tokens if succeeded and input_tokens is not None else 0)


class MetricsCollector:
    """Counts calls and requests; an observer (``manager.add_observer(collector)``) and an explicit API.

    Each call updates one series, that of its (provider, model, deployment); the views by provider, by model and
    by deployment are merged from those when read, so counting stays cheap however many views there are.
    ``max_series`` bounds those combinations (later ones count under ``"__other__"``), ``recent_size`` the
    recent-calls ring buffer; ``relative_accuracy`` is the quantiles' error bound. Thread-safe.
    """

    #: The event kinds this observer uses; an event bus that filters by kind may skip building the others.
    event_kinds = frozenset({"request_end", "first_token", "retry", "circuit_change", "budget_alert"})

    def __init__(self, *, recent_size: int = 1000, max_series: int = 1000, relative_accuracy: float = 0.01) -> None:
        self.recent_size = recent_size
        self.max_series = max_series
        self.relative_accuracy = relative_accuracy
        #: Finished requests queued before they are folded into the counters.
        self.batch = BATCH
        self._lock = threading.Lock()
        self._init_state()

    def _init_state(self) -> None:
        accuracy = self.relative_accuracy
        self._series: dict[tuple[str, str | None, str | None], SeriesStats] = {}
        # Request level (what the application saw).
        self._requests = SeriesStats(accuracy)
        self._operations: dict[str, int] = {}
        self._retries = 0
        self._fallbacks = 0
        self._streams = 0
        self._chunks = 0
        self._circuit_changes = 0
        self._circuits: dict[str, str] = {}
        self._budget_alerts = 0
        self._recent: deque[tuple[Any, ...]] = deque(maxlen=self.recent_size)
        self._started = time.time()
        # Finished requests not yet folded into the counters (see on_event); deque appends and pops are atomic.
        self._pending: deque[tuple[Any, ...]] = deque()

    # -- the explicit API -----------------------------------------------------------------------------------

    def record_request(
        self,
        provider: str,
        method: str,
        duration: float,
        success: bool,
        tokens: Any = None,
        model: str | None = None,
        error: BaseException | type[BaseException] | str | None = None,
        *,
        deployment: str | None = None,
        cost: float | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Count one call to ``provider``: ``tokens`` is a TokenUsage, a mapping, or a total; ``error`` its failure."""
        now = time.time() if timestamp is None else timestamp
        inp, out, total = tokens_of(tokens)
        name = None if success else (error_name(error) or "UnknownError")
        with self._lock:
            self._fold()  # keeps the recent-calls buffer in order
            stats = self._series.get((provider, model, deployment)) or self._new_series(provider, model, deployment,
                                                                                          now)
            stats.add(duration, name, inp, out, total, now)
            if cost:
                stats.cost += cost
            self._recent.append((now, provider, model, deployment, method, duration, success, name, total))

    def record_first_token(self, provider: str, latency: float, *, model: str | None = None,
                           deployment: str | None = None) -> None:
        """Count one stream's time to first token (seconds since the request started)."""
        with self._lock:
            stats = self._series.get((provider, model, deployment)) or self._new_series(provider, model, deployment)
            stats.ttft.add(latency)
            self._requests.ttft.add(latency)

    def record_cost(self, provider: str, cost: float, *, model: str | None = None,
                    deployment: str | None = None) -> None:
        """Add a cost (USD) to a provider, model and deployment."""
        with self._lock:
            stats = self._series.get((provider, model, deployment)) or self._new_series(provider, model, deployment)
            stats.cost += cost
            self._requests.cost += cost

    def _new_series(self, provider: str, model: str | None, deployment: str | None,
                    now: float | None = None) -> SeriesStats:
        # Caller holds the lock and found no series for this key.
        key: tuple[str, str | None, str | None] = (provider, model, deployment)
        if len(self._series) >= self.max_series:
            key = (OTHER, OTHER, OTHER)
            stats = self._series.get(key)
            if stats is not None:
                return stats
        stats = self._series[key] = SeriesStats(self.relative_accuracy, now)
        return stats

    # -- the observer ---------------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Count one lifecycle event from the manager.

        Every call is counted from ``request_end``, which carries the request's attempt trace: one event per request
        instead of one per attempt. On the request path that event is only queued, as a tuple of plain values;
        queued requests are folded into the counters ``BATCH`` at a time, and before anything is read, so the
        counters and sketches are touched in one warm pass instead of once per request between network reads.
        """
        kind = event.kind
        if kind == "request_end":
            cost = event.cost
            if cost is None and getattr(event.response, "cost", None) is not None:
                cost = event_cost(event)
            error, usage = event.error, event.usage
            attempts = event.data.get("attempts")
            # One attempt (the common case) is queued as plain values: a queued tuple then holds nothing the
            # garbage collector has to follow, however long it waits.
            single = attempts[0] if attempts and len(attempts) == 1 and attempts[0].skipped is None else None
            pending = self._pending
            if single is not None and usage is not None and error is None:
                # The steady state (one successful attempt with usage), without the conditionals below.
                pending.append((
                    event.timestamp, event.operation, event.latency or 0.0, None, usage.input_tokens,
                    usage.output_tokens, usage.total_tokens, cost, event.chunk_count, event.provider, event.model,
                    event.deployment, single.provider or UNKNOWN, single.model, single.deployment, single.error_type,
                    single.latency, None,
                ))
                if len(pending) >= self.batch:
                    with self._lock:
                        self._fold()
                return
            pending.append((
                event.timestamp, event.operation, event.latency or 0.0,
                type(error).__name__ if error is not None else (CANCELLED if event.success is False else None),
                usage.input_tokens if usage is not None else None,
                usage.output_tokens if usage is not None else 0, usage.total_tokens if usage is not None else 0,
                cost, event.chunk_count, event.provider, event.model, event.deployment,
                None if single is None else (single.provider or UNKNOWN), None if single is None else single.model,
                None if single is None else single.deployment, None if single is None else single.error_type,
                0.0 if single is None else single.latency, None if single is not None else attempts,
            ))
            if len(pending) >= self.batch:
                with self._lock:
                    self._fold()
        elif kind == "first_token":
            self.record_first_token(event.provider or UNKNOWN, event.latency or 0.0, model=event.model,
                                    deployment=event.deployment)
        elif kind == "retry":
            with self._lock:
                self._retries += 1
        elif kind == "circuit_change":
            with self._lock:
                self._circuit_changes += 1
                self._circuits[event.deployment or UNKNOWN] = str(event.data.get("new"))
        elif kind == "budget_alert":
            with self._lock:
                self._budget_alerts += 1

    def _fold(self) -> None:
        """Count the queued requests (called with the lock held)."""
        pending = self._pending
        if not pending:
            return
        popleft = pending.popleft
        items = [popleft() for _ in range(len(pending))]  # writers only append: these many are there
        if len(items) > 1 and self._fold_uniform(items):
            return
        self._fold_each(items)

    def _fold_uniform(self, items: list[tuple[Any, ...]]) -> bool:
        """Count a batch of one-attempt requests to one deployment and model (the steady state) column by column.

        Returns False, counting nothing, for any other batch.
        """
        columns = list(zip(*items, strict=True))
        (times, operations, latencies, outcomes, inputs, outputs, totals, costs, chunks, providers, models,
         deployments, a_providers, a_models, a_deployments, names, a_latencies, _) = columns
        if None in a_providers:
            return False  # a request with several attempts, or none
        size = len(items)
        # One series? Counting equal values is done in C; building a set of key tuples is not.
        if not (a_providers.count(a_providers[0]) == size and a_models.count(a_models[0]) == size
                and a_deployments.count(a_deployments[0]) == size):
            return False
        key = (a_providers[0], a_models[0], a_deployments[0])
        if any(costs) and not (providers.count(key[0]) == size and models.count(key[1]) == size
                               and deployments.count(key[2]) == size):
            return False  # costs to attribute to another series
        now = times[-1]
        stats = self._series.get(key) or self._new_series(*key, times[0])
        if names.count(None) == len(names) and None not in inputs:
            failures: Counter[str] = Counter()
            counted = (sum(inputs), sum(outputs), sum(totals))
        else:
            failures = Counter(name for name in names if name is not None)
            ok = [index for index, name in enumerate(names) if name is None and inputs[index] is not None]
            counted = (sum(inputs[i] for i in ok), sum(outputs[i] for i in ok), sum(totals[i] for i in ok))
        stats.add_many(a_latencies, failures, *counted, now)
        self._recent.extend(items)  # the queued values double as recent-calls entries
        requests = self._requests
        requests.add_many(latencies, Counter() if outcomes.count(None) == size else
                          Counter(o for o in outcomes if o is not None), 0, 0, 0, now)
        counts = self._operations
        first = operations[0]
        for operation, number in ({first: size} if operations.count(first) == size else Counter(operations)).items():
            counts[operation] = counts.get(operation, 0) + number
        if chunks.count(None) != size:
            streamed = [c for c in chunks if c is not None]
            self._streams += len(streamed)
            self._chunks += sum(streamed)
        spent = sum(filter(None, costs))
        if spent:
            requests.cost += spent
            stats.cost += spent
        return True

    def _fold_each(self, items: list[tuple[Any, ...]]) -> None:
        """Count queued requests one by one (mixed batches: retries, fallbacks, several deployments)."""
        series, recent, requests, operations = self._series, self._recent, self._requests, self._operations
        for item in items:
            (now, operation, latency, outcome, input_tokens, output_tokens, total_tokens, cost, chunks, provider,
             model, deployment, a_provider, a_model, a_deployment, name, a_latency, attempts) = item
            stats = None
            if a_provider is not None:
                stats = series.get((a_provider, a_model, a_deployment)) or self._new_series(
                    a_provider, a_model, a_deployment, now)
                if name is None and input_tokens is not None:
                    stats.add(a_latency, None, input_tokens, output_tokens, total_tokens, now)
                else:
                    stats.add(a_latency, name, 0, 0, 0, now)
                recent.append(item)  # the queued values themselves: read back by get_recent_calls
            elif attempts:
                if any(a.skipped for a in attempts):  # candidates passed over were never called: not counted
                    attempts = [a for a in attempts if a.skipped is None]
                last = len(attempts) - 1
                previous = None
                for index, attempt in enumerate(attempts):
                    a_provider, a_model, a_deployment = attempt.provider or UNKNOWN, attempt.model, attempt.deployment
                    name = attempt.error_type
                    stats = series.get((a_provider, a_model, a_deployment)) or self._new_series(
                        a_provider, a_model, a_deployment, now)
                    if index == last and name is None and input_tokens is not None:
                        tokens = total_tokens
                        stats.add(attempt.latency, None, input_tokens, output_tokens, tokens, now)
                    else:
                        tokens = 0
                        stats.add(attempt.latency, name, 0, 0, 0, now)
                    recent.append((now, a_provider, a_model, a_deployment, operation, attempt.latency, name is None,
                                   name, tokens))
                    if previous is not None and a_deployment != previous:
                        self._fallbacks += 1  # the request moved to another deployment
                    previous = a_deployment
            requests.add(latency, outcome, 0, 0, 0, now)
            operations[operation] = operations.get(operation, 0) + 1
            if chunks is not None:
                self._streams += 1
                self._chunks += chunks
            if cost:
                requests.cost += cost
                provider = provider or UNKNOWN
                if stats is None or (provider, model, deployment) != (a_provider, a_model, a_deployment):
                    stats = series.get((provider, model, deployment)) or self._new_series(provider, model,
                                                                                        deployment)
                stats.cost += cost

    # -- reading --------------------------------------------------------------------------------------------

    def get_provider_stats(self, provider: str) -> Stats:
        """Calls to one provider: totals, success rate, errors by class, tokens, cost, latency, time to first token.

        Read it as a dict or by attribute (``stats.successful_requests / stats.total_requests``).
        """
        return Stats(self._view("provider").get(provider, SeriesStats(self.relative_accuracy)).snapshot())

    def get_model_stats(self, model: str) -> Stats:
        """Calls for one model (same shape as :meth:`get_provider_stats`)."""
        return Stats(self._view("model").get(model, SeriesStats(self.relative_accuracy)).snapshot())

    def get_deployment_stats(self, deployment: str) -> Stats:
        """Calls to one deployment (same shape as :meth:`get_provider_stats`)."""
        return Stats(self._view("deployment").get(deployment, SeriesStats(self.relative_accuracy)).snapshot())

    def get_all_stats(self, by: str = "provider") -> dict[str, dict[str, Any]]:
        """Stats of every provider (``by="model"`` or ``"deployment"`` for the other dimensions)."""
        return {key: stats.snapshot() for key, stats in self._view(by).items()}

    def _view(self, by: str) -> dict[str, SeriesStats]:
        """The series merged by one dimension (calls without a deployment are left out of that view)."""
        index = _DIMENSIONS.get(by)
        if index is None:
            raise ValueError("by must be 'provider', 'model' or 'deployment'")
        view: dict[str, SeriesStats] = {}
        with self._lock:
            self._fold()
            for key, stats in self._series.items():
                name = key[index]
                if name is None:
                    if index == 2:
                        continue
                    name = UNKNOWN
                merged = view.get(name)
                if merged is None:
                    merged = view[name] = SeriesStats(self.relative_accuracy)
                merged.merge(stats)
        return view

    def _all_calls(self) -> SeriesStats:
        # Caller holds the lock.
        total = SeriesStats(self.relative_accuracy)
        for stats in self._series.values():
            total.merge(stats)
        return total

    def get_summary(self) -> dict[str, Any]:
        """Totals over every provider, plus what the application saw (``requests``) and circuit states."""
        with self._lock:
            self._fold()
            calls = self._all_calls().snapshot()
            requests = self._requests.snapshot()
            return {
                "total_requests": calls["total_requests"],
                "successful_requests": calls["successful_requests"],
                "failed_requests": calls["failed_requests"],
                "success_rate": calls["success_rate"],
                "error_counts": calls["error_counts"],
                "tokens": calls["tokens"],
                "total_tokens": calls["total_tokens"],
                "total_cost": requests["total_cost"] or calls["total_cost"],
                "avg_response_time": calls["avg_response_time"],
                "providers": sorted({k[0] for k in self._series}),
                "models": sorted({k[1] or UNKNOWN for k in self._series}),
                "deployments": sorted({k[2] for k in self._series if k[2] is not None}),
                "requests": {
                    "total": requests["total_requests"],
                    "successful": requests["successful_requests"],
                    "failed": requests["failed_requests"],
                    "cancelled": requests["cancelled_requests"],
                    "success_rate": requests["success_rate"],
                    "error_counts": requests["error_counts"],
                    "by_operation": dict(self._operations),
                    "retries": self._retries,
                    "fallbacks": self._fallbacks,
                    "streams": self._streams,
                    "stream_chunks": self._chunks,
                    "latency": requests["latency"],
                    "time_to_first_token": requests["time_to_first_token"],
                },
                "circuits": dict(self._circuits),
                "circuit_changes": self._circuit_changes,
                "budget_alerts": self._budget_alerts,
                "uptime": time.time() - self._started,
            }

    def get_performance_stats(self) -> dict[str, Any]:
        """Latency figures over every call (seconds) and throughput since the collector started or was reset."""
        with self._lock:
            self._fold()
            calls = self._all_calls()
            latency = calls.latency
            ttft = self._requests.ttft
            p50, p95, p99 = latency.quantiles((0.5, 0.95, 0.99))
            t50, t95, t99 = ttft.quantiles((0.5, 0.95, 0.99))
            elapsed = max(time.time() - self._started, 1e-9)
            return {
                "total_requests": latency.count,
                "avg_response_time": latency.mean or 0.0,
                "min_response_time": latency.min if latency.count else None,
                "max_response_time": latency.max if latency.count else None,
                "p50_response_time": p50,
                "p95_response_time": p95,
                "p99_response_time": p99,
                "avg_time_to_first_token": ttft.mean,
                "p50_time_to_first_token": t50,
                "p95_time_to_first_token": t95,
                "p99_time_to_first_token": t99,
                "requests_per_second": latency.count / elapsed,
                "tokens_per_second": calls.total_tokens / elapsed,
            }

    def get_recent_calls(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest calls (at most ``recent_size``), oldest first."""
        with self._lock:
            self._fold()
            items = list(self._recent)
        if limit is not None:
            items = items[-limit:] if limit > 0 else []
        keys = ("timestamp", "provider", "model", "deployment", "method", "duration", "success", "error", "tokens")
        return [dict(zip(keys, _recent_call(item), strict=True)) for item in items]

    def reset_stats(self) -> None:
        """Forget everything counted so far."""
        with self._lock:
            self._init_state()

    def __repr__(self) -> str:
        with self._lock:
            self._fold()
            return (f"MetricsCollector(calls={sum(s.requests for s in self._series.values())}, "
                    f"requests={self._requests.requests}, series={len(self._series)})")
