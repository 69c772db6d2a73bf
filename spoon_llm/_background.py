"""Store work that must reach its end even when the request that started it is cancelled.

A reservation taken in a shared store, or a settle/release on its way there, cannot be abandoned halfway:
cancelling the await would leave the hold in the store for ever (or until its window expires). These helpers
run such work as a task the caller's cancellation does not stop, and undo what a cancelled wait still acquired.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["drain", "finish_regardless", "undo_if_abandoned"]

_T = TypeVar("_T")
logger = logging.getLogger("spoon_llm.state")
#: Tasks running on after their caller left: held here so they are not collected before they end.
_running: set[asyncio.Future[Any]] = set()


def _keep(task: asyncio.Future[Any]) -> None:
    _running.add(task)
    task.add_done_callback(_ended)


def _ended(task: asyncio.Future[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:  # retrieved, so asyncio does not warn about it
        logger.debug("store work that outlived its request failed: %r", task.exception())


def finish_regardless(work: Awaitable[_T]) -> Awaitable[_T]:
    """``work`` as a task that runs to its end even if the caller is cancelled while awaiting the result."""
    task = asyncio.ensure_future(work)
    _keep(task)
    return asyncio.shield(task)


def undo_if_abandoned(task: asyncio.Future[_T], undo: Callable[[_T], Awaitable[Any] | None]) -> None:
    """After a cancelled wait for ``task``: once it ends with a result, hand that result to ``undo``.

    For acquisitions (a budget reservation, a rate-limit hold) whose requester left before learning it had them.
    """
    def done(finished: asyncio.Future[_T]) -> None:
        if finished.cancelled() or finished.exception() is not None:
            return
        work = undo(finished.result())
        if work is not None:
            _keep(asyncio.ensure_future(work))

    _keep(task)
    task.add_done_callback(done)


async def drain() -> None:
    """Wait until the store work this event loop runs on behalf of finished or cancelled requests has ended.

    Work started meanwhile (an undo handed on by work that just ended) is waited for too; failures are not raised
    (they were decided, and logged, where they happened).
    """
    loop = asyncio.get_running_loop()
    while True:
        mine = [task for task in _running if task.get_loop() is loop]
        if not mine:
            return
        await asyncio.wait(mine)
