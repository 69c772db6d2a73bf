"""Circuit breaker per deployment: stop sending traffic to a deployment that keeps failing, probe it later."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

__all__ = ["CircuitBreaker", "CircuitState"]

#: Resolution of the failure-rate window: calls older than ``window`` leave it within ``window / WINDOW_BUCKETS``.
WINDOW_BUCKETS = 20


class CircuitState(str, Enum):
    """closed: traffic flows; open: no traffic until the cooldown ends; half_open: exactly one probe in flight."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Stops traffic to a failing deployment and lets one probe through after a cooldown.

    Opens after ``failure_threshold`` consecutive failures, or when more than ``failure_rate`` of at least
    ``min_requests`` calls in the last ``window`` seconds failed; after ``cooldown`` seconds it lets exactly one
    probe through (half-open): its success closes the circuit, its failure opens it again.

    Fed passively by live traffic: the manager calls :meth:`allow_request` before an attempt, notes
    :attr:`generation`, and passes it to :meth:`record_success` / :meth:`record_failure` after it. An outcome of
    a call admitted before the last state change (a success that started before the circuit opened) still counts
    in the statistics but moves the circuit nowhere: only the probe's outcome closes or re-opens it.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        failure_rate: float = 0.5,
        window: float = 60.0,
        min_requests: int = 20,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitState, CircuitState], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.failure_rate = failure_rate
        self.window = window
        self.min_requests = min_requests
        self.cooldown = cooldown
        self._clock = clock
        self.on_change = on_change
        self._state = CircuitState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        #: Seconds the current opening lasts: ``cooldown``, or what :meth:`trip` asked for.
        self._open_for = cooldown
        self._probe_in_flight = False
        #: Bumped on every state change; a call's outcome moves the circuit only if it was admitted in the current
        #: generation (see record_success).
        self.generation = 0
        # Calls and failures in the window, counted in WINDOW_BUCKETS time buckets: O(1) per call and fixed memory
        # whatever the traffic (a per-call log would hold every call of the last `window` seconds).
        self._bucket_width = window / WINDOW_BUCKETS if window > 0 else 1.0
        self._bucket_calls = [0] * WINDOW_BUCKETS
        self._bucket_failures = [0] * WINDOW_BUCKETS
        self._head = -1  # index of the newest bucket since the clock's epoch
        self._recent_calls = 0
        self._recent_failures = 0

    @property
    def state(self) -> CircuitState:
        """The current state (an open circuit whose cooldown has ended reads as half-open)."""
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self._open_for:
            self._transition(CircuitState.HALF_OPEN)
        return self._state

    @property
    def retry_at(self) -> float | None:
        """When an open circuit will admit a probe (clock time), else ``None``."""
        return self._opened_at + self._open_for if self._state is CircuitState.OPEN else None

    def seconds_to_probe(self) -> float | None:
        """Seconds until an open circuit admits its probe, else ``None`` (it admits traffic or a probe now)."""
        if self.state is not CircuitState.OPEN:
            return None
        return max(0.0, self._opened_at + self._open_for - self._clock())

    def allow_request(self) -> bool:
        """True when a call may go through now; in half-open state only the first caller gets the probe."""
        if self._state is CircuitState.CLOSED:  # the common case, checked without the cooldown clock
            return True
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def is_available(self) -> bool:
        """True when :meth:`allow_request` would admit a call, without taking the probe."""
        if self._state is CircuitState.CLOSED:
            return True
        state = self.state
        return state is CircuitState.CLOSED or (state is CircuitState.HALF_OPEN and not self._probe_in_flight)

    def _stale(self, generation: int | None) -> bool:
        # Admitted before the last state change: while the circuit is not closed, only the probe (admitted in the
        # current, half-open generation) may move it. None: the caller did not track it (treated as current).
        return generation is not None and generation != self.generation

    def record_success(self, generation: int | None = None) -> None:
        """A call admitted in ``generation`` (:attr:`generation` when it was admitted) succeeded."""
        self._note(False)
        if self._state is CircuitState.CLOSED:
            self._consecutive_failures = 0
            return
        if self._stale(generation):
            return  # a success that started before the circuit opened proves nothing about now
        self._consecutive_failures = 0
        self._probe_in_flight = False
        self._transition(CircuitState.CLOSED)

    def record_failure(self, generation: int | None = None) -> None:
        """A call admitted in ``generation`` failed in a way that says the deployment is unhealthy."""
        self._note(True)
        if self._state is not CircuitState.CLOSED and self._stale(generation):
            return  # only the probe re-opens a half-open circuit
        self._consecutive_failures += 1
        if self._state is CircuitState.HALF_OPEN:
            self._probe_in_flight = False
            self._open()
        elif self._state is CircuitState.CLOSED and (
            self._consecutive_failures >= self.failure_threshold
            or (
                self._recent_calls >= self.min_requests
                and self._recent_failures / self._recent_calls > self.failure_rate
            )
        ):
            self._open()

    def release_probe(self, generation: int | None = None) -> None:
        """The probe ended without a verdict (e.g. the caller cancelled): let the next caller probe.

        A call admitted in another ``generation`` never held the probe, so it hands nothing back.
        """
        if not self._stale(generation):
            self._probe_in_flight = False

    def reset(self) -> None:
        """Close the circuit and forget history."""
        self._consecutive_failures = 0
        self._bucket_calls = [0] * WINDOW_BUCKETS
        self._bucket_failures = [0] * WINDOW_BUCKETS
        self._recent_calls = self._recent_failures = 0
        self._probe_in_flight = False
        self._transition(CircuitState.CLOSED)

    def trip(self, seconds: float) -> None:
        """Open now for ``seconds`` (not the usual cooldown), whatever the state; then one probe as usual.

        Used when one answer is enough to know the deployment cannot serve (its key was rejected): waiting for
        ``failure_threshold`` failures would send more requests to a key that cannot succeed.
        """
        self._probe_in_flight = False
        self._open(seconds)

    def _open(self, seconds: float | None = None) -> None:
        self._opened_at = self._clock()
        self._open_for = self.cooldown if seconds is None else seconds
        if self._state is CircuitState.OPEN:
            self.generation += 1  # a new opening: calls admitted before it move nothing
            return
        self._transition(CircuitState.OPEN)

    def _note(self, failed: bool) -> None:
        bucket = int(self._clock() / self._bucket_width)
        if bucket != self._head:
            self._roll(bucket)
        index = bucket % WINDOW_BUCKETS
        self._bucket_calls[index] += 1
        self._recent_calls += 1
        if failed:
            self._bucket_failures[index] += 1
            self._recent_failures += 1

    def _roll(self, bucket: int) -> None:
        # Empty the buckets that fell out of the window between the newest one and `bucket`.
        calls, failures = self._bucket_calls, self._bucket_failures
        for old in range(max(self._head + 1, bucket - WINDOW_BUCKETS + 1), bucket + 1):
            index = old % WINDOW_BUCKETS
            self._recent_calls -= calls[index]
            self._recent_failures -= failures[index]
            calls[index] = failures[index] = 0
        self._head = bucket

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        self.generation += 1
        if new is CircuitState.CLOSED:
            self._consecutive_failures = 0
        if self.on_change is not None:
            self.on_change(old, new)

    def snapshot(self) -> dict[str, object]:
        """State for status pages."""
        return {
            "state": self.state.value,
            "consecutive_failures": self._consecutive_failures,
            "recent_calls": self._recent_calls,
            "recent_failures": self._recent_failures,
            "retry_at": self.retry_at,
            "probe_in_flight": self._probe_in_flight,
        }
