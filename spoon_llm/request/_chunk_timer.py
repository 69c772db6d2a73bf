"""Bounding each wait for a stream's next chunk with one timer per stream, not one per chunk.

``asyncio.timeout`` around every ``__anext__`` builds a context manager and schedules (then cancels) a loop timer
for each chunk. A stream's deadline only moves forward as chunks arrive, so :class:`ChunkTimer` keeps a single
timer armed at the earliest deadline it has been given: when it goes off it compares with the current deadline
and re-arms for the rest instead of firing. A wait costs two attribute stores and a clock read.

The timer cancels the task that waits, as ``asyncio.timeout`` does, and :meth:`ChunkTimer.expired` tells that
cancellation from anyone else's (Python 3.11's ``Task.cancelling``/``uncancel`` bookkeeping).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Generator
from typing import Any

__all__ = ["ChunkTimer", "Resumed", "consume_cancellation"]

_INF = float("inf")


class ChunkTimer:
    """One stream's wait bound: :meth:`start` before awaiting a chunk, :meth:`stop` after, :meth:`close` at the end.

    Example::

        timer = ChunkTimer()
        try:
            timer.start(idle_seconds)
            try:
                chunk = await iterator.__anext__()
            except asyncio.CancelledError:
                if timer.stop() and timer.expired():
                    raise TimeoutError from None
                raise
            timer.stop()
        finally:
            timer.close()
    """

    __slots__ = ("_armed_at", "_cancelling", "_deadline", "_fired", "_handle", "_loop", "_task", "_waiting")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = _INF  # when the pending timer goes off (infinite: none pending)
        self._deadline = _INF  # when the current wait ends
        self._waiting = False
        self._fired = False
        self._cancelling = 0

    def start(self, seconds: float) -> None:
        """A wait of at most ``seconds`` begins (in the task that will await)."""
        loop = self._loop
        task = asyncio.current_task(loop)
        self._task = task
        if sys.version_info >= (3, 11) and task is not None:
            self._cancelling = task.cancelling()
        deadline = self._deadline = loop.time() + seconds
        self._waiting = True
        self._fired = False
        if deadline < self._armed_at:  # the pending timer (if any) would go off too late: move it earlier
            handle = self._handle
            if handle is not None:
                handle.cancel()
            self._handle = loop.call_at(deadline, self._fire)
            self._armed_at = deadline

    def stop(self) -> bool:
        """The wait ended (with a chunk or an exception); whether the timer cancelled it."""
        self._waiting = False
        return self._fired

    def expired(self) -> bool:
        """Consume the timer's cancellation (after :meth:`stop` returned True); whether it was the only one.

        False: the task was cancelled by someone else too, and that cancellation stands.
        """
        self._fired = False
        return consume_cancellation(self._task, self._cancelling)

    def close(self) -> None:
        """The stream ended: drop the pending timer."""
        self._waiting = False
        handle, self._handle = self._handle, None
        self._armed_at = _INF
        if handle is not None:
            handle.cancel()

    def _fire(self) -> None:
        when = self._armed_at
        self._handle = None
        self._armed_at = _INF
        if not self._waiting:  # between waits (the chunk is with the consumer): the next start() arms again
            return
        deadline = self._deadline
        if deadline > when:  # the deadline moved on since this was armed: wait for the rest
            if deadline == _INF:
                return
            self._handle = self._loop.call_at(deadline, self._fire)
            self._armed_at = deadline
            return
        task = self._task
        if task is not None and not task.done():
            self._fired = True
            task.cancel()


def consume_cancellation(task: asyncio.Task[Any] | None, cancelling: int) -> bool:
    """Take back one cancellation of ``task`` (a timer's); whether none other is pending beyond ``cancelling``.

    ``cancelling`` is ``task.cancelling()`` from when the timer was armed (Python 3.11's bookkeeping; on 3.10 a
    timer's cancellation cannot be told from another's, and it is taken as the timer's).
    """
    if sys.version_info >= (3, 11) and task is not None:
        return task.uncancel() <= cancelling
    return True


class Resumed:
    """Awaits the rest of an ``__anext__`` that was stepped once by hand and is waiting on ``waiting``.

    Stepping ``__anext__().__await__()`` once tells a chunk that is ready (``StopIteration``) from one still to
    come, so only a real wait pays for the timer (or a relay's write).

    The loop hands each value or exception the task is resumed with (cancellation included) to the step, as an
    ``await`` of it from the start would have.
    """

    __slots__ = ("_step", "_waiting")

    def __init__(self, step: Generator[Any, Any, Any], waiting: Any) -> None:
        self._step = step
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, Any]:
        step, waiting = self._step, self._waiting
        while True:
            try:
                value = yield waiting
            except GeneratorExit:
                step.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - thrown in by the task (cancellation): the step decides
                try:
                    waiting = step.throw(exc)
                except StopIteration as done:
                    return done.value
                continue
            try:
                waiting = step.send(value)
            except StopIteration as done:
                return done.value
