"""The whole-answer attempt's deadline timer: its own cancellation is a timeout, anyone else's stands.

Bounds are wide (1,000 s against waits that end at once or are cancelled) so a loaded machine cannot turn an
outcome around; the one wait that must time out has a 10 ms bound and waits 1,000 s.
"""

from __future__ import annotations

import asyncio

import pytest

from spoon_llm.request.deadline import AttemptTimer


async def test_a_wait_past_the_bound_is_the_timers_cancellation() -> None:
    timer = AttemptTimer(asyncio.get_running_loop(), 0.01)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(1000)
    assert timer.expired() is True
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]  # consumed: the task goes on
    assert timer.expired() is False  # only once
    timer.cancel()


async def test_someone_elses_cancellation_is_not_a_timeout() -> None:
    async def bounded_wait(started: asyncio.Event) -> str:
        timer = AttemptTimer(asyncio.get_running_loop(), 1000)
        try:
            started.set()
            await asyncio.sleep(1000)
        except asyncio.CancelledError:
            return "timeout" if timer.expired() else "cancelled"
        finally:
            timer.cancel()
        return "finished"

    started = asyncio.Event()
    task = asyncio.get_running_loop().create_task(bounded_wait(started))
    await started.wait()
    task.cancel()
    assert await task == "cancelled"


async def test_a_wait_that_ends_in_time_leaves_no_timer_behind() -> None:
    loop = asyncio.get_running_loop()
    timer = AttemptTimer(loop, 0.05)
    await asyncio.sleep(0)
    timer.cancel()
    await asyncio.sleep(0.2)  # past the bound: a timer left armed would cancel this wait
    assert timer.expired() is False


async def test_a_cancellation_on_top_of_the_timers_still_stands() -> None:
    seen: list[bool] = []

    async def bounded_wait() -> None:
        timer = AttemptTimer(asyncio.get_running_loop(), 0.01)
        try:
            await asyncio.sleep(1000)
        except asyncio.CancelledError:
            asyncio.current_task().cancel()  # type: ignore[union-attr]  # someone else, after the timer went off
            seen.append(timer.expired())  # two cancellations pending: not the timer's alone
            await asyncio.sleep(0)  # the other cancellation is delivered here
        finally:
            timer.cancel()

    task = asyncio.get_running_loop().create_task(bounded_wait())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [False]
