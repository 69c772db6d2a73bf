"""Bounding one await by what is left of a request's deadline."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

from ..errors import RequestTimeoutError

if TYPE_CHECKING:
    from ..routing.attempts import Slot

__all__ = ["bounded", "deadline_error", "timeout"]

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
