"""Operations around the routes: admission control, the gateway's own metrics, and the access log.

All three sit on every request's path, so each does the least work per request it can: admission is two integer
checks while there is room, the request log appends one tuple per request, which a background task
turns into metrics and access-log lines every few hundred milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import IO, Any

import orjson

from ._errors import GatewayError

__all__ = ["AdmissionGate", "GatewayMetrics", "RequestLog"]


class AdmissionGate:
    """At most ``limit`` requests in flight; up to ``queue`` more wait (FIFO) at most ``timeout`` seconds.

    Beyond that a request is refused at once with 503 and Retry-After: a busy worker says so early instead of
    letting latency grow without bound.
    """

    __slots__ = ("limit", "queue", "timeout", "retry_after", "inflight", "_waiters", "rejected")

    def __init__(self, limit: int, queue: int, timeout: float, retry_after: int) -> None:
        self.limit = limit
        self.queue = queue
        self.timeout = timeout
        self.retry_after = retry_after
        self.inflight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.rejected = 0

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return len(self._waiters)

    def _busy(self, why: str) -> GatewayError:
        self.rejected += 1
        return GatewayError(503, f"the gateway is at capacity ({why}); retry shortly", code="server_busy",
                            retry_after=self.retry_after)

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue when every slot is taken; raises a 503 when that is not possible."""
        if self.inflight < self.limit and not self._waiters:
            self.inflight += 1
            return
        if len(self._waiters) >= self.queue:
            raise self._busy(f"{self.limit} requests in flight and {self.queue} queued")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.timeout)
        except asyncio.TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return  # the slot arrived as the wait ran out: keep it
            waiter.cancel()
            self._waiters.remove(waiter)
            raise self._busy(f"no slot within {self.timeout:g}s") from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot while being cancelled: pass it on
            else:
                waiter.cancel()
            raise

    def release(self) -> None:
        """Give a slot back, or hand it straight to the oldest waiter still waiting."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the waiter: inflight is unchanged
                return
        self.inflight -= 1


#: Index of each number kept per label set in :class:`GatewayMetrics`.
_COUNT, _SECONDS, _COST, _IN, _OUT = range(5)


#: Distinct model names the gateway's series label by (a client may send any ``provider/model`` name).
MAX_MODELS = 500


class GatewayMetrics:
    """Request counters of the gateway, by route, status, key alias, model and provider, in Prometheus text."""

    def __init__(self, gate: AdmissionGate) -> None:
        self.gate = gate
        self.series: dict[tuple[str, int, str, str, str], list[float]] = {}
        self.cancelled: dict[tuple[str, str], int] = {}
        self.started = time.time()
        #: Model names used as labels; beyond MAX_MODELS (clients choose them) ``__other__``.
        self._models: set[str] = set()

    def record(self, route: str, status: int, alias: str, model: str, provider: str, seconds: float,
               cost: float, tokens_in: int, tokens_out: int) -> None:
        """Count one finished request."""
        models = self._models
        if model not in models:
            if len(models) < MAX_MODELS:
                models.add(model)
            else:
                model = "__other__"
        key = (route, status, alias, model, provider)
        values = self.series.get(key)
        if values is None:
            values = self.series[key] = [0.0, 0.0, 0.0, 0.0, 0.0]
        values[_COUNT] += 1
        values[_SECONDS] += seconds
        values[_COST] += cost
        values[_IN] += tokens_in
        values[_OUT] += tokens_out

    def record_cancelled(self, route: str, alias: str) -> None:
        """Count a request whose client went away before the answer was complete."""
        key = (route, alias)
        self.cancelled[key] = self.cancelled.get(key, 0) + 1

    def render(self) -> bytes:
        """The gateway's series in the Prometheus text format (prefix ``spoon_gateway_``)."""
        lines = [
            "# HELP spoon_gateway_requests_total Requests answered, by route, status, key alias, model, provider.",
            "# TYPE spoon_gateway_requests_total counter",
        ]
        rows = list(self.series.items())
        for (route, status, alias, model, provider), values in rows:
            lines.append(f"spoon_gateway_requests_total{{{_labels(route, status, alias, model, provider)}}} "
                         f"{values[_COUNT]:g}")
        for name, index, text in (("request_seconds_total", _SECONDS, "Seconds spent answering requests."),
                                  ("cost_usd_total", _COST, "Cost of answered requests in USD."),
                                  ("input_tokens_total", _IN, "Input tokens of answered requests."),
                                  ("output_tokens_total", _OUT, "Output tokens of answered requests.")):
            lines.append(f"# HELP spoon_gateway_{name} {text}")
            lines.append(f"# TYPE spoon_gateway_{name} counter")
            for (route, status, alias, model, provider), values in rows:
                lines.append(f"spoon_gateway_{name}{{{_labels(route, status, alias, model, provider)}}} "
                             f"{values[index]!r}")
        lines.append("# HELP spoon_gateway_cancelled_total Requests whose client disconnected before the end.")
        lines.append("# TYPE spoon_gateway_cancelled_total counter")
        for (route, alias), count in list(self.cancelled.items()):
            lines.append(f'spoon_gateway_cancelled_total{{route="{_escape(route)}",key_alias="{_escape(alias)}"}} '
                         f"{count}")
        gate = self.gate
        lines += [
            "# HELP spoon_gateway_in_flight Requests being served by this worker.",
            "# TYPE spoon_gateway_in_flight gauge",
            f"spoon_gateway_in_flight {gate.inflight}",
            "# HELP spoon_gateway_queued Requests waiting for a slot in this worker.",
            "# TYPE spoon_gateway_queued gauge",
            f"spoon_gateway_queued {gate.queued}",
            "# HELP spoon_gateway_rejected_total Requests refused with 503 because the worker was at capacity.",
            "# TYPE spoon_gateway_rejected_total counter",
            f"spoon_gateway_rejected_total {gate.rejected}",
        ]
        return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(route: str, status: int, alias: str, model: str, provider: str) -> str:
    return (f'route="{_escape(route)}",status="{status}",key_alias="{_escape(alias)}",model="{_escape(model)}",'
            f'provider="{_escape(provider)}"')


#: Fields of one request's entry, in the order :meth:`RequestLog.add` takes them.
_FIELDS = ("ts", "request_id", "method", "route", "status", "key_alias", "model", "provider", "latency_ms",
           "input_tokens", "output_tokens", "cost_usd", "outcome", "client", "attempts")


def _access_line(e: tuple[Any, ...]) -> bytes:
    """One entry as its access-log line: the ``_FIELDS`` as a JSON object.

    A dict display rather than ``dict(zip(_FIELDS, e))``, which costs twice what orjson's encoding does.
    """
    return orjson.dumps({"ts": e[0], "request_id": e[1], "method": e[2], "route": e[3], "status": e[4],
                         "key_alias": e[5], "model": e[6], "provider": e[7], "latency_ms": e[8],
                         "input_tokens": e[9], "output_tokens": e[10], "cost_usd": e[11], "outcome": e[12],
                         "client": e[13], "attempts": e[14]}) + b"\n"


class RequestLog:
    """Every finished request as one tuple; a background task turns them into metrics and access-log lines.

    The request path only appends a tuple. Every ``interval`` seconds (and before ``/metrics`` answers) the
    queued entries are added to :class:`GatewayMetrics` and, when ``access_log`` is on, written as one JSON
    object per line (key alias, never the key) to ``path`` or stderr.
    """

    def __init__(self, metrics: GatewayMetrics, *, access_log: bool, path: str | None = None,
                 interval: float = 0.25) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.path = path
        self.interval = interval
        self._pending: list[tuple[Any, ...]] = []
        #: Called with each batch of finished entries, off the request path (the admin API's metrics).
        self.sinks: list[Callable[[list[tuple[Any, ...]]], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._stream: IO[bytes] | None = None

    def add(self, *entry: Any) -> None:
        """Queue one entry (see ``_FIELDS`` for the order); nothing is counted, formatted or written here."""
        self._pending.append(entry)

    def start(self) -> None:
        """Open the destination and start the writer (in the running loop)."""
        if self.access_log and self.path is not None:
            self._stream = open(self.path, "ab")  # noqa: SIM115 - closed in stop()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    def flush(self) -> None:
        """Count what is queued, and write it to the access log."""
        entries, self._pending = self._pending, []
        if not entries:
            return
        record = self.metrics.record
        for e in entries:
            record(e[3], e[4], e[5], e[6] or "", e[7] or "", e[8] / 1000, e[11], e[9], e[10])
            if e[12] == "cancelled":
                self.metrics.record_cancelled(e[3], e[5])
        for sink in self.sinks:
            sink(entries)
        if self.access_log:
            self._write(_access_line(e) for e in entries)

    def _write(self, lines: Iterable[bytes]) -> None:
        data = b"".join(lines)
        try:
            if self._stream is not None:
                self._stream.write(data)
                self._stream.flush()
            else:
                os.write(sys.stderr.fileno(), data)
        except OSError:
            pass  # a full disk or a closed stderr must not take requests down

    async def stop(self) -> None:
        """Stop the writer, write what is left and close the file."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.flush()
        if self._stream is not None:
            self._stream.close()
            self._stream = None
