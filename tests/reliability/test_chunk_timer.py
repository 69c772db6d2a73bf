"""The stream's one-timer wait bound: a wait past its limit times out, everything else is left alone.

The margins are wide (a bound of 1,000 s against waits of a fraction of a second) so that a loaded machine can only
make a wait that must time out take longer, never turn an outcome around.
"""

from __future__ import annotations

import asyncio

import pytest

from spoon_llm.request._chunk_timer import ChunkTimer


async def test_a_wait_past_its_bound_is_cancelled_by_the_timer() -> None:
    timer = ChunkTimer()
    timer.start(0.01)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(1000)
    assert timer.stop() is True
    assert timer.expired() is True  # the timer's own cancellation: consumed, a timeout
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    timer.close()


async def test_a_deadline_moved_on_rearms_instead_of_firing() -> None:
    timer = ChunkTimer()
    timer.start(0.05)  # the timer is armed for 50 ms...
    timer.stop()
    timer.start(1000)  # ...and the next wait may last much longer: the early timer must not end it
    done = asyncio.Event()
    asyncio.get_running_loop().call_later(0.2, done.set)
    await done.wait()
    assert timer.stop() is False
    timer.close()


async def test_the_timer_going_off_between_waits_cancels_nothing() -> None:
    timer = ChunkTimer()
    timer.start(0.01)
    timer.stop()  # the chunk is with the consumer while the timer goes off
    await asyncio.sleep(0.1)
    timer.start(1000)
    await asyncio.sleep(0)
    assert timer.stop() is False
    timer.close()


async def test_a_shorter_bound_moves_the_timer_earlier() -> None:
    timer = ChunkTimer()
    timer.start(1000)
    timer.stop()
    timer.start(0.01)  # the request's deadline is nearer than the idle bound armed before
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(1000)
    assert timer.stop() and timer.expired()
    timer.close()


async def test_someone_elses_cancellation_is_not_a_timeout() -> None:
    timer = ChunkTimer()

    async def wait() -> bool:
        timer.start(1000)
        try:
            await asyncio.sleep(1000)
        except asyncio.CancelledError:
            return timer.stop()
        return True

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    task.cancel()
    assert await task is False  # the timer did not fire: the cancellation is the caller's
    timer.close()


async def test_a_closed_timer_never_fires() -> None:
    timer = ChunkTimer()
    timer.start(0.01)
    timer.close()
    await asyncio.sleep(0.1)
    assert timer.stop() is False
