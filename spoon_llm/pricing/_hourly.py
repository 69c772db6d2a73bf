"""Self-hosted pricing: a GPU billed by the hour, its cost attributed to the requests it served.

The meter starts when it is created (the deployment's first request in this process). Each request is charged
the uptime cost accrued since the previous charge, so the charges add up exactly to ``uptime hours x rate`` and
idle time lands on the next request. Meters are per process: several processes in front of one GPU each see
their own uptime, so give only one of them the ``hourly_rate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["HourlyMeter"]


class HourlyMeter:
    """Attributes ``rate`` (money per hour of uptime) to requests, pro rata to the time between them."""

    __slots__ = ("_clock", "attributed", "rate", "requests", "started", "_last")

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self.started = clock()
        self._last = self.started
        self.attributed = 0.0
        self.requests = 0

    def charge(self) -> float:
        """The cost to attribute to one finished request: the uptime cost accrued since the last charge."""
        now = self._clock()
        cost = (now - self._last) / 3600.0 * self.rate
        self._last = now
        self.attributed += cost
        self.requests += 1
        return cost

    def uptime_cost(self) -> float:
        """What the deployment has cost since the meter started (attributed or not)."""
        return (self._clock() - self.started) / 3600.0 * self.rate
