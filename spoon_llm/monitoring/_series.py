"""What the metrics collector keeps per series: counters and latency sketches, and the helpers that read events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .sketch import QuantileSketch

if TYPE_CHECKING:
    from ..events import Event

__all__ = ["SeriesStats", "Stats", "error_name", "event_cost", "tokens_of"]


def error_name(error: object) -> str | None:
    """The error class name to count under: an exception's class, a class's name, or a string as given."""
    if error is None:
        return None
    if isinstance(error, str):
        return error
    if isinstance(error, type):
        return error.__name__
    return type(error).__name__


def event_cost(event: Event) -> float | None:
    """An event's cost in USD: ``event.cost``, else ``response.cost.total_cost`` when the response carries one."""
    if event.cost is not None:
        return event.cost
    cost = getattr(event.response, "cost", None)
    total = getattr(cost, "total_cost", None)
    return float(total) if isinstance(total, (int, float)) else None


def tokens_of(tokens: Any) -> tuple[int, int, int]:
    """``(input, output, total)`` from a TokenUsage, a mapping, or a plain total."""
    if tokens is None:
        return 0, 0, 0
    if isinstance(tokens, int):
        return 0, 0, tokens
    if isinstance(tokens, Mapping):
        inp = int(tokens.get("input_tokens", tokens.get("prompt_tokens", 0)) or 0)
        out = int(tokens.get("output_tokens", tokens.get("completion_tokens", 0)) or 0)
        return inp, out, int(tokens.get("total_tokens", 0) or 0) or inp + out
    inp = int(getattr(tokens, "input_tokens", 0) or 0)
    out = int(getattr(tokens, "output_tokens", 0) or 0)
    return inp, out, int(getattr(tokens, "total_tokens", 0) or 0) or inp + out


class Stats(dict[str, Any]):
    """A stats snapshot read as a dict (``stats["total_requests"]``) or by attribute (``stats.total_requests``).

    Code written for the older API reads ``stats.successful_requests / stats.total_requests``.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no statistic {name!r}; available: {', '.join(self)}") from None


#: The outcome name the collector gives a request its caller cancelled (counted apart from failures).
CANCELLED = "Cancelled"


class SeriesStats:
    """Counters and latency sketches of one provider, model or deployment (or of everything)."""

    __slots__ = ("cancelled", "cost", "errors", "failures", "first_seen", "input_tokens", "last_seen", "latency",
                 "output_tokens", "requests", "successes", "total_tokens", "ttft")

    def __init__(self, relative_accuracy: float = 0.01, now: float | None = None) -> None:
        self.requests = 0
        self.successes = 0
        self.failures = 0
        #: Requests the caller cancelled (or closed before the end): neither successes nor failures.
        self.cancelled = 0
        self.errors: dict[str, int] = {}
        self.input_tokens = 0
        self.output_tokens = 0
        self.total_tokens = 0
        self.cost = 0.0
        self.latency = QuantileSketch(relative_accuracy)
        self.ttft = QuantileSketch(relative_accuracy)
        self.first_seen: float | None = now
        self.last_seen: float | None = now

    def add(self, duration: float, error: str | None, input_tokens: int, output_tokens: int, total_tokens: int,
            now: float) -> None:
        """Count one call; ``error`` is the failure's class name (``None``: success). On every request's path."""
        self.requests += 1
        if error is None:
            self.successes += 1
        elif error == CANCELLED:
            self.cancelled += 1
        else:
            self.failures += 1
            self.errors[error] = self.errors.get(error, 0) + 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.total_tokens += total_tokens
        self.latency.add(duration)
        self.last_seen = now

    def add_many(self, durations: Sequence[float], failures: Mapping[str, int], input_tokens: int, output_tokens: int,
                 total_tokens: int, now: float) -> None:
        """Count many calls at once: their latencies, failures by class name, and summed tokens."""
        self.requests += len(durations)
        failed = cancelled = 0
        if failures:
            errors = self.errors
            for name, number in failures.items():
                if name == CANCELLED:
                    cancelled += number
                    continue
                errors[name] = errors.get(name, 0) + number
                failed += number
        self.successes += len(durations) - failed - cancelled
        self.failures += failed
        self.cancelled += cancelled
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.total_tokens += total_tokens
        self.latency.extend(durations)
        self.last_seen = now

    def merge(self, other: SeriesStats) -> None:
        """Add ``other``'s counts and latencies to these."""
        self.requests += other.requests
        self.successes += other.successes
        self.failures += other.failures
        self.cancelled += other.cancelled
        for name, n in other.errors.items():
            self.errors[name] = self.errors.get(name, 0) + n
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens
        self.cost += other.cost
        self.latency.merge(other.latency)
        self.ttft.merge(other.ttft)
        seen = [t for t in (self.first_seen, other.first_seen) if t is not None]
        self.first_seen = min(seen) if seen else None
        seen = [t for t in (self.last_seen, other.last_seen) if t is not None]
        self.last_seen = max(seen) if seen else None

    def snapshot(self) -> dict[str, Any]:
        """Plain-data view (latencies in seconds)."""
        latency = self.latency.summary()
        ttft = self.ttft.summary()
        return {
            "total_requests": self.requests,
            "successful_requests": self.successes,
            "failed_requests": self.failures,
            "cancelled_requests": self.cancelled,
            "success_rate": self.successes / self.requests if self.requests else 0.0,
            "error_counts": dict(self.errors),
            "tokens": {"input": self.input_tokens, "output": self.output_tokens, "total": self.total_tokens},
            "total_tokens": self.total_tokens,
            "total_cost": self.cost,
            "avg_response_time": latency["avg"] or 0.0,
            "latency": latency,
            "time_to_first_token": ttft,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }
