"""Cool-downs of the Redis store mirrored in-process, so checking one costs no round trip.

Every request checks its deployment's circuit and rate-limit cool-downs, which are almost always absent; a
``PTTL`` per check was most of the Redis store's cost per request. Setting a cool-down also ``PUBLISH``es it (in
the same script), and each store keeps a subscription that records ``key -> local deadline``. A key is read once
through (``PTTL``) after the subscription is confirmed and then answered locally; a cool-down set anywhere
arrives over the subscription.

The mirror answers only while it is fresh: the subscription is pinged every ``heartbeat / 2`` seconds (so a
busy event loop that answers late still hears a pong in time), and when nothing was heard for ``2 * heartbeat``
(or the connection broke) every check reads through again, and what was known is forgotten, so a reconnect
starts from ``PTTL`` reads (so does a subscription redis-py re-established by itself: a second subscribe
confirmation means a gap). A store whose client cannot subscribe simply reads through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = ["CooldownMirror"]

logger = logging.getLogger("spoon_llm.state")

#: Keys remembered at most (deployments and virtual keys); beyond it the mirror starts over (reads through).
_MAX_KEYS = 100_000


class CooldownMirror:
    """``key -> deadline`` for the cool-downs published on ``channel``; see the module docstring."""

    def __init__(self, client: Any, channel: str, *, heartbeat: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self.channel = channel
        self.heartbeat = heartbeat
        self._clock = clock
        self._known: dict[str, float] = {}  # full Redis key -> local deadline (0.0: none)
        self._heard = -float("inf")  # when the subscription last answered (clock)
        self._generation = 0  # bumped whenever the subscription is lost, so stale read-throughs are not kept
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def _fresh(self) -> bool:
        return self._clock() - self._heard < 2 * self.heartbeat

    def remaining(self, key: str) -> float | None:
        """Seconds left of ``key``'s cool-down, or ``None`` when the mirror cannot say (read through)."""
        if self._task is None:
            self._start()
            return None
        deadline = self._known.get(key)
        if deadline is None:
            return None
        now = self._clock()  # one reading for freshness and what is left
        if now - self._heard >= 2 * self.heartbeat:
            return None
        return deadline - now if deadline > now else 0.0

    def generation(self) -> int | None:
        """A token for :meth:`learn`: ``None`` while the mirror is not fresh (nothing read now may be kept)."""
        return self._generation if self._task is not None and self._fresh() else None

    def learn(self, key: str, milliseconds: int, generation: int | None) -> None:
        """Record a read-through (``PTTL`` in ms; negative: none) begun at ``generation``."""
        if generation is None or generation != self._generation:
            return
        if len(self._known) >= _MAX_KEYS:
            self._known.clear()
        deadline = self._clock() + milliseconds / 1000.0 if milliseconds > 0 else 0.0
        self._known[key] = max(self._known.get(key, 0.0), deadline)

    def _published(self, data: Any) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        key, _, ms = text.rpartition(" ")
        try:
            milliseconds = int(ms)
        except ValueError:
            return
        if len(self._known) >= _MAX_KEYS:
            self._known.clear()
        deadline = self._clock() + milliseconds / 1000.0 if milliseconds > 0 else 0.0
        self._known[key] = max(self._known.get(key, 0.0), deadline)

    def _lost(self) -> None:
        self._generation += 1
        self._heard = -float("inf")
        self._known.clear()

    def _start(self) -> None:
        if self._closed:
            return
        try:
            self._task = asyncio.get_running_loop().create_task(self._run())
        except RuntimeError:  # no running loop: read through until called from one
            self._task = None

    async def _run(self) -> None:
        while not self._closed:
            pubsub = None
            try:
                pubsub = self._client.pubsub()
                await pubsub.subscribe(self.channel)
                pinged = self._clock()
                subscribed = False
                while not self._closed:
                    message = await pubsub.get_message(timeout=self.heartbeat / 2)
                    now = self._clock()
                    if message is not None:
                        kind = message.get("type")
                        if kind == "subscribe":
                            if subscribed:  # redis-py reconnected and subscribed again: the gap went unheard
                                self._lost()
                            subscribed = True
                            self._heard = now
                        elif kind == "pong":
                            self._heard = now
                        elif kind == "message":
                            self._heard = now
                            self._published(message.get("data"))
                    if now - pinged >= self.heartbeat / 2:
                        pinged = now
                        await pubsub.ping()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection broke: read through until subscribed again
                logger.debug("cool-down subscription lost (%s: %s); reading through", type(exc).__name__, exc)
            finally:
                self._lost()
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
            if not self._closed:
                await asyncio.sleep(self.heartbeat)

    async def close(self) -> None:
        """Stop the subscription."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
