"""Bounding one await by what is left of a request's deadline."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

from ..errors import RequestTimeoutError
from ._chunk_timer import consume_cancellation

if TYPE_CHECKING:
    from ..routing.attempts import Slot

__all__ = ["AttemptTimer", "bounded", "deadline_error", "timeout"]

if sys.version_info >= (3, 11):
    timeout = asyncio.timeout
else:  # pragma: no cover - 3.10
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def timeout(seconds: float) -> AsyncIterator[None]:
        """``asyncio.timeout`` for Python 3.10: raises ``asyncio.TimeoutError`` once ``seconds`` have passed."""
        task = asyncio.current_task()
        assert task is not None
        fired = False

        def expire() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            yield
        except asyncio.CancelledError as exc:
            if not fired:
                raise  # the caller cancelled the request: not a timeout
            raise asyncio.TimeoutError from exc
        finally:
            handle.cancel()


class AttemptTimer:
    """Cancels the current task after ``seconds`` unless :meth:`cancel` comes first: ``asyncio.timeout`` for one await.

    ``asyncio.timeout`` builds a context manager and two coroutines (``__aenter__``/``__aexit__``) per use; this is
    one object and one loop timer, on every whole-answer request with a deadline. After a ``CancelledError``,
    :meth:`expired` tells the timer's cancellation from anyone else's, as ``asyncio.timeout`` does::

        timer = AttemptTimer(loop, seconds)
        try:
            result = await work
        except asyncio.CancelledError:
            if timer.expired():
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()
    """

    __slots__ = ("_cancelling", "_fired", "_handle", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        task = self._task = asyncio.current_task(loop)
        self._cancelling = 0
        if sys.version_info >= (3, 11) and task is not None:
            self._cancelling = task.cancelling()
        self._fired = False
        self._handle = loop.call_later(seconds, self._fire)

    def _fire(self) -> None:
        task = self._task
        if task is not None and not task.done():
            self._fired = True
            task.cancel()

    def expired(self) -> bool:
        """Whether the cancellation being handled is this timer's alone (it is then consumed)."""
        if not self._fired:
            return False
        self._fired = False
        return consume_cancellation(self._task, self._cancelling)

    def cancel(self) -> None:
        """The await ended: the timer will not go off."""
        self._handle.cancel()


async def bounded(work: Awaitable[Any], slot: Slot) -> Any:
    """``work`` within what is left of the slot's share of the request deadline."""
    assert slot.timeout is not None
    try:
        async with timeout(max(slot.ends - time.monotonic(), 0.0)):
            return await work
    except asyncio.TimeoutError as exc:
        raise deadline_error(slot) from exc


def deadline_error(slot: Slot) -> RequestTimeoutError:
    """What an attempt that ran into the request's deadline raises."""
    return RequestTimeoutError("request deadline reached during the call", provider=slot.deployment.provider_name,
                               model=slot.model)
